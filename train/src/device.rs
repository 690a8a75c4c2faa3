//! `--device cpu | cuda[:N]`.

use anyhow::{bail, Result};
use candle_core::Device;

/// Parses a device name: `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda`
/// cargo feature).
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let ordinal = match name.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("bad device {name:?}: expected cuda:N"))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                bail!("device {name}: this binary was built without CUDA (rebuild with --features cuda)");
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        _ => bail!("unknown device {name:?}: expected cpu, cuda or cuda:N"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda")
            .unwrap_err()
            .to_string()
            .contains("without CUDA"));
    }
}
