//! The campaign map `train cluster` and `train eval` write
//! (`campaign_map.json`) and `serve` loads beside its bundle: for every
//! account of a scored window that reached `flag` or `review`, its verdict,
//! score, campaign and reasons, and the window the map covers. A gateway
//! acts on a campaign the batch job found within one reload.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    account_model::AccountVerdict,
    bundle::{read_json, save_json_atomic},
    error::{ModelError, Result},
};

/// Campaign map file name (inside a bundle, or anywhere `serve` is told).
pub const CAMPAIGN_MAP_FILE: &str = "campaign_map.json";
/// Format version of [`CampaignMap`].
pub const CAMPAIGN_MAP_VERSION: u32 = 1;

/// What the map says about one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedAccount {
    /// `flag` or `review`.
    pub verdict: AccountVerdict,
    /// Account score.
    pub score: f32,
    /// Its campaign, when its operator group is one.
    pub campaign_id: Option<String>,
    /// Why, most important first.
    pub reasons: Vec<String>,
}

/// Account verdicts of one scored window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignMap {
    /// Format version ([`CAMPAIGN_MAP_VERSION`]).
    pub version: u32,
    /// First request of the window (RFC 3339).
    pub window_start: String,
    /// Last request of the window (RFC 3339).
    pub window_end: String,
    /// When the map was written (RFC 3339).
    pub created_at: String,
    /// Accounts, by id.
    pub accounts: BTreeMap<String, MappedAccount>,
}

impl CampaignMap {
    /// The map's entry for `account_id`.
    pub fn lookup(&self, account_id: &str) -> Option<&MappedAccount> {
        self.accounts.get(account_id)
    }

    /// Reads a campaign map file.
    pub fn load(path: &Path) -> Result<Self> {
        let map: CampaignMap = read_json(path)?;
        if map.version != CAMPAIGN_MAP_VERSION {
            return Err(ModelError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "format version {} (this build reads {CAMPAIGN_MAP_VERSION})",
                    map.version
                ),
            });
        }
        Ok(map)
    }

    /// Writes the map atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_json_atomic(path, self)
    }
}
