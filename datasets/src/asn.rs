//! Autonomous systems of cloud, hosting, VPN and proxy-infrastructure
//! operators: requests from them come from servers, not from people at home.
//!
//! Source: the operators' own published ASNs as registered in PeeringDB
//! (network type "Content" / "NSP" with a hosting or cloud business) and the
//! RIR whois records they point to; reviewed 2026-11. Maintenance: add an
//! entry with its operator name when an investigation finds a provider
//! missing, and keep the list sorted by ASN (a unit test checks this).

/// `(asn, operator)`, sorted by ASN.
pub const HOSTING_ASNS: &[(u32, &str)] = &[
    (3223, "Voxility"),
    (7941, "InterNAP / INAP"),
    (8075, "Microsoft Azure"),
    (8100, "QuadraNet"),
    (8560, "IONOS"),
    (9009, "M247"),
    (10439, "CariNet"),
    (12876, "Scaleway"),
    (13213, "UK-2 / Iomart"),
    (13335, "Cloudflare"),
    (14061, "DigitalOcean"),
    (14618, "Amazon AWS (us-east-1)"),
    (15169, "Google"),
    (16276, "OVHcloud"),
    (16509, "Amazon AWS"),
    (19318, "Interserver"),
    (20446, "Highwinds / StackPath"),
    (20473, "Vultr (Choopa)"),
    (21859, "Zenlayer"),
    (24940, "Hetzner Online"),
    (25820, "IT7 Networks"),
    (26496, "GoDaddy"),
    (28753, "Leaseweb Germany"),
    (29802, "HIVELOCITY"),
    (30633, "Leaseweb USA"),
    (31898, "Oracle Cloud"),
    (32244, "Liquid Web"),
    (35916, "Multacom"),
    (36351, "IBM Cloud / SoftLayer"),
    (37963, "Alibaba Cloud (CN)"),
    (40021, "Contabo US"),
    (42708, "GleSYS"),
    (43357, "Owl Limited"),
    (45090, "Tencent Cloud"),
    (45102, "Alibaba Cloud"),
    (46606, "Unified Layer"),
    (47583, "Hostinger"),
    (49981, "WorldStream"),
    (51167, "Contabo"),
    (53667, "FranTech / BuyVM"),
    (54290, "Hostwinds"),
    (55286, "B2 Net Solutions"),
    (55990, "Huawei Cloud (CN)"),
    (60068, "Datacamp / CDN77"),
    (60781, "Leaseweb Netherlands"),
    (61317, "Heficed"),
    (62240, "Clouvider"),
    (62563, "GTHost"),
    (63023, "GTHost (US)"),
    (63949, "Akamai Connected Cloud (Linode)"),
    (132203, "Tencent Cloud (international)"),
    (133199, "SonderCloud"),
    (135377, "UCloud (HK)"),
    (136907, "Huawei Cloud"),
    (141995, "Contabo Asia"),
    (197540, "netcup"),
    (198605, "Avast / AVAST Software VPN"),
    (202425, "IP Volume"),
    (206092, "IPXO"),
    (207990, "HostRoyale"),
    (209588, "Flyservers"),
    (212238, "Datacamp (VPN exits)"),
    (396982, "Google Cloud"),
];

/// Whether `asn` belongs to a hosting, cloud, VPN or proxy-infrastructure
/// operator on the list.
pub fn is_hosting(asn: u32) -> bool {
    HOSTING_ASNS.binary_search_by_key(&asn, |&(a, _)| a).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(HOSTING_ASNS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn lookups() {
        assert!(is_hosting(16509));
        assert!(is_hosting(396982));
        assert!(!is_hosting(7922)); // Comcast, residential
    }
}
