//! The report's account and campaign sections: the account scorer's
//! verdicts per benign archetype and per campaign, how the campaigns found
//! compare with the true ones, the campaign table with its evidence, and
//! the campaigns' timelines.

use super::document::Document;
use super::plots::{campaign_timeline, TimelineBand};
use crate::{
    accounts::{AccountReport, VerdictTally},
    verdicts::{WindowVerdicts, TIMELINE_ACCOUNTS, TIMELINE_CAMPAIGNS},
};

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn tally_row(name: &str, t: &VerdictTally) -> Vec<String> {
    vec![
        name.to_string(),
        t.accounts.to_string(),
        format!("{} ({})", t.flag, pct(t.flag_share())),
        format!("{} ({})", t.flag + t.review, pct(t.flag_or_review_share())),
    ]
}

const TALLY_HEADER: [&str; 4] = ["group", "accounts", "flag", "flag or review"];

fn account_tables(d: &mut Document, r: &AccountReport) {
    d.heading("Account verdicts");
    d.paragraph(
        "The account scorer (`account_model.json`) combines each account's session scores with its cross-account evidence (shared infrastructure, templates, synchrony, creation waves, its operator group; docs/coordination.md). `flag` and `review` thresholds were chosen on validation accounts; an account keeps either verdict only when one of its sessions or an operator or template campaign corroborates it. Benign accounts: false-positive rates per archetype.",
    );
    let mut rows = vec![tally_row("all benign accounts", &r.benign_total)];
    rows.extend(r.benign.iter().map(|(name, t)| tally_row(name, t)));
    d.table(&TALLY_HEADER, rows);
    d.paragraph("Extraction accounts caught, per campaign.");
    let mut rows = vec![tally_row("all extraction accounts", &r.extraction_total)];
    rows.extend(r.campaigns.iter().map(|(name, t)| tally_row(name, t)));
    d.table(&TALLY_HEADER, rows);
    if let Some(q) = &r.campaign_quality {
        d.paragraph(format!(
            "{} campaigns found. Against `campaign_id` over the {} extraction accounts (an account in no campaign counts as its own cluster): ARI {:.3}, homogeneity {:.3}, completeness {:.3}.",
            r.campaigns_found, q.items, q.adjusted_rand_index, q.homogeneity, q.completeness
        ));
    }
    let c = &r.corroboration;
    d.paragraph(format!(
        "Corroboration: of the accounts the scorer sent to `flag` or `review`, {} kept them on a session scoring at least the propagation threshold ({} of those flags lowered to review: their best session stayed under the session threshold), {} on an operator-group or shared-template campaign, and {} were cleared for lack of either (docs/coordination.md).",
        c.by_session, c.lowered_to_review, c.by_campaign, c.cleared
    ));
    if let Some(recall) = r.session_recall_at_0_1pct_fpr_by_account {
        d.paragraph(format!(
            "Sessions ranked by their account's verdict, then its score, instead of their own score: recall {recall:.4} at 0.1% benign session FPR.",
        ));
    }
    if let (Some(f), Some(r)) = (r.sessions_flagged, r.sessions_flagged_or_reviewed) {
        d.paragraph(format!(
            "Sessions whose account ends at `flag`: {:.2}% of extraction sessions, {:.2}% of benign ones; at `flag` or `review`: {:.2}% and {:.2}%.",
            100.0 * f.extraction,
            100.0 * f.benign,
            100.0 * r.extraction,
            100.0 * r.benign
        ));
    }
}

fn campaign_table(d: &mut Document, v: &WindowVerdicts) {
    d.heading("Campaigns");
    d.paragraph("An operator group (accounts linked by combined keys: a template on the same day, a prefix around a template, a fingerprint or template in one creation day) is a campaign when it holds at least three accounts and at least half of them are flagged or sent to review. Flagged or reviewed accounts left over are grouped by templates at least five of them share and that are mostly theirs: a frame, or pairs of wrapper sentences one prompt carries together (`shared-template`), then by a DBSCAN over their sessions (`content-cluster`). `campaigns.json` holds every field and the account ids.");
    let rows = v
        .campaigns
        .iter()
        .map(|c| {
            vec![
                c.campaign_id.clone(),
                format!("{} ({} flag, {} review)", c.accounts, c.flagged, c.review),
                format!(
                    "{} to {}",
                    &c.first_seen[..16.min(c.first_seen.len())],
                    &c.last_seen[..16.min(c.last_seen.len())]
                ),
                c.links.join(", "),
                format!("{} IPs / {} prefixes", c.shared_ips, c.shared_prefixes),
                format!(
                    "{} fresh, created over {}",
                    pct(c.fresh_share),
                    c.creation_span_hours
                        .map_or("unknown".into(), |h| format!("{h:.0} h"))
                ),
                format!(
                    "{} accounts at {}",
                    c.busiest_hour.1,
                    &c.busiest_hour.0[..13.min(c.busiest_hour.0.len())]
                ),
                format!("{:.3}", c.mean_account_score),
                c.templates
                    .first()
                    .map(|t| {
                        format!(
                            "`{}` ({} accounts, {} in the window)",
                            t.frame, t.accounts, t.window_accounts
                        )
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    d.table(
        &[
            "campaign",
            "accounts",
            "active",
            "linked by",
            "shared infrastructure",
            "creation",
            "busiest hour",
            "mean account score",
            "top template",
        ],
        rows,
    );
}

fn timeline(d: &mut Document, v: &WindowVerdicts) -> anyhow::Result<()> {
    if v.timelines.is_empty() {
        return Ok(());
    }
    let bands: Vec<TimelineBand> = v
        .timelines
        .iter()
        .map(|t| TimelineBand {
            name: &t.campaign_id,
            accounts: &t.accounts,
        })
        .collect();
    d.figure(
        format!(
            "Campaign timelines: the first {} campaigns, up to {} accounts each (evenly spaced), a dot per session start",
            TIMELINE_CAMPAIGNS, TIMELINE_ACCOUNTS
        ),
        campaign_timeline(&bands)?,
    );
    Ok(())
}

/// Adds the account and campaign sections.
pub fn add(d: &mut Document, v: &WindowVerdicts) -> anyhow::Result<()> {
    account_tables(d, &v.report);
    campaign_table(d, v);
    timeline(d, v)
}
