//! Simulated network and client infrastructure: regions, residential and
//! hosting networks, addresses and user agents.

use rand::{seq::IndexedRandom, Rng};

/// `(region, weight, residential ASNs)` of the simulated user base.
pub const REGIONS: &[(&str, u32, &[u32])] = &[
    ("US", 30, &[7922, 7018, 701, 20115, 21928]),
    ("IN", 10, &[55836, 9498, 45609]),
    ("GB", 6, &[2856, 5089, 5607]),
    ("DE", 6, &[3320, 3209, 6805]),
    ("BR", 5, &[28573, 18881, 26599]),
    ("FR", 4, &[3215, 12322, 15557]),
    ("JP", 4, &[4713, 17676, 2516]),
    ("CA", 4, &[812, 577, 852]),
    ("KR", 3, &[4766, 9318]),
    ("SG", 2, &[9506, 4773]),
    ("CN", 3, &[4134, 4837]),
    ("ID", 3, &[7713, 23693]),
    ("VN", 2, &[45899, 7552]),
    ("NL", 2, &[1136, 33915]),
    ("ES", 2, &[3352, 12479]),
    ("AU", 2, &[1221, 4804]),
    ("NG", 2, &[29465, 37148]),
    ("PL", 2, &[5617, 12741]),
    ("MX", 2, &[8151, 28403]),
    ("TR", 2, &[9121, 16135]),
];

/// University networks (students and researchers on campus).
pub const UNIVERSITY_ASNS: &[u32] = &[3, 25, 32, 786, 2200, 680, 2907, 7575, 4538];

/// Large clouds on the hosting list (legitimate automation runs here too).
pub const LISTED_CLOUD_ASNS: &[u32] = &[16509, 14618, 8075, 15169, 396982, 31898];

/// Hosting / VPS / proxy networks on the hosting list.
pub const LISTED_HOSTING_ASNS: &[u32] = &[
    14061, 16276, 24940, 20473, 63949, 51167, 9009, 60068, 212238, 45102, 132203, 136907, 62240,
    206092, 209588, 53667, 202425, 12876, 197540,
];

/// Hosting networks that are NOT on the maintained list: the detector must
/// not depend on the list being complete.
pub const UNLISTED_HOSTING_ASNS: &[u32] = &[36352, 40065, 35913, 46562, 23470, 11878, 398101];

/// Browsers people use.
pub const BROWSER_USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36 Edg/132.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:134.0) Gecko/20100101 Firefox/134.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
];

/// Official SDKs and agent frameworks.
pub const SDK_USER_AGENTS: &[&str] = &[
    "OpenAI/Python 1.59.7",
    "OpenAI/Python 1.61.0",
    "OpenAI/JS 4.77.0",
    "anthropic-sdk-python/0.42.0",
    "langchain-core/0.3.29 python/3.11",
    "litellm/1.57.4",
    "llama-index/0.12.10",
    "google-genai-sdk/0.5.0",
];

/// Generic HTTP clients of scripts.
pub const SCRIPTED_USER_AGENTS: &[&str] = &[
    "python-requests/2.32.3",
    "python-requests/2.31.0",
    "python-httpx/0.27.2",
    "python-httpx/0.28.1",
    "aiohttp/3.11.11",
    "curl/8.11.1",
    "Go-http-client/2.0",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "axios/1.7.9",
    "okhttp/4.12.0",
];

/// A weighted region pick.
pub fn pick_region<R: Rng>(rng: &mut R) -> &'static (&'static str, u32, &'static [u32]) {
    let total: u32 = REGIONS.iter().map(|r| r.1).sum();
    let mut x = rng.random_range(0..total);
    for r in REGIONS {
        if x < r.1 {
            return r;
        }
        x -= r.1;
    }
    &REGIONS[0]
}

/// A residential ASN of `region` (any region's when unknown).
pub fn residential_asn<R: Rng>(rng: &mut R, region: &str) -> u32 {
    let asns = REGIONS
        .iter()
        .find(|r| r.0 == region)
        .map_or(REGIONS[0].2, |r| r.2);
    *asns.choose(rng).expect("every region has ASNs")
}

/// A plausible address inside `asn`: each ASN owns a few stable /16s
/// (derived from the ASN, avoiding private and reserved ranges); one in
/// eight addresses is IPv6 for residential and mobile networks.
pub fn address_in<R: Rng>(rng: &mut R, asn: u32, allow_v6: bool) -> String {
    if allow_v6 && rng.random_ratio(1, 8) {
        let prefix = 0x2a00 + (asn % 0x200) as u16;
        return format!(
            "{prefix:x}:{:x}:{:x}:{:x}::{:x}",
            (asn >> 4) & 0xffff,
            rng.random::<u16>(),
            rng.random::<u16>(),
            rng.random_range(1..0xffffu32)
        );
    }
    let prefix = prefix24_in(rng, asn);
    format!("{prefix}.{}", rng.random_range(1..255u32))
}

/// A /24 inside `asn` (`"a.b.c"`, see [`address_in`]).
pub fn prefix24_in<R: Rng>(rng: &mut R, asn: u32) -> String {
    let block = rng.random_range(0..4u32);
    let h = asn
        .wrapping_mul(2_654_435_761)
        .wrapping_add(block.wrapping_mul(40_503));
    let mut first = 11 + (h >> 8) % 212; // 11..=222
    if matches!(first, 100 | 127 | 169 | 172 | 192 | 198 | 203) {
        first += 1;
    }
    let second = h % 256;
    format!("{first}.{second}.{}", rng.random_range(0..256u32))
}

/// `count` distinct addresses of one /24 inside `asn`, adjacent or nearly
/// so, the way a provider hands out a block (at most 200).
pub fn addresses_in_24<R: Rng>(rng: &mut R, asn: u32, count: usize) -> Vec<String> {
    let prefix = prefix24_in(rng, asn);
    let count = count.clamp(1, 200) as u32;
    let step = if count * 2 < 250 {
        rng.random_range(1..=2u32)
    } else {
        1
    };
    let first = rng.random_range(1..=(254 - (count - 1) * step));
    (0..count)
        .map(|i| format!("{prefix}.{}", first + i * step))
        .collect()
}

/// A hosting network as a proxy or VPN provider rents it: mostly from the
/// hosting list, sometimes from a network missing from it.
pub fn hosting_asn<R: Rng>(rng: &mut R) -> u32 {
    if rng.random_bool(0.7) {
        *LISTED_HOSTING_ASNS.choose(rng).expect("not empty")
    } else {
        *UNLISTED_HOSTING_ASNS.choose(rng).expect("not empty")
    }
}

/// About `count` exits `(asn, ip)` rented from hosting providers: blocks
/// of `per_24` (inclusive range) addresses in one /24 each, every block
/// in its own provider's network.
pub fn hosting_exits<R: Rng>(
    rng: &mut R,
    count: usize,
    per_24: (usize, usize),
) -> Vec<(u32, String)> {
    let mut exits = Vec::with_capacity(count);
    while exits.len() < count {
        let asn = hosting_asn(rng);
        let block = rng
            .random_range(per_24.0..=per_24.1)
            .min(count - exits.len());
        exits.extend(
            addresses_in_24(rng, asn, block)
                .into_iter()
                .map(|ip| (asn, ip)),
        );
    }
    exits
}

/// `count` residential exits `(asn, ip)` of a proxy service, spread over
/// every region's home networks.
pub fn residential_exits<R: Rng>(rng: &mut R, count: usize) -> Vec<(u32, String)> {
    (0..count)
        .map(|_| {
            let region = pick_region(rng).0;
            let asn = residential_asn(rng, region);
            (asn, address_in(rng, asn, true))
        })
        .collect()
}

/// A pick from a non-empty list of user agents.
pub fn pick<'a, R: Rng>(rng: &mut R, list: &'a [&'a str]) -> &'a str {
    list.choose(rng).expect("list is not empty")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asn::is_hosting;

    #[test]
    fn pools_agree_with_the_hosting_list() {
        assert!(LISTED_CLOUD_ASNS
            .iter()
            .chain(LISTED_HOSTING_ASNS)
            .all(|&a| is_hosting(a)));
        assert!(!UNLISTED_HOSTING_ASNS.iter().any(|&a| is_hosting(a)));
        let residential = REGIONS
            .iter()
            .flat_map(|r| r.2.iter())
            .chain(UNIVERSITY_ASNS);
        assert!(!residential.into_iter().any(|&a| is_hosting(a)));
    }

    #[test]
    fn hosting_exits_share_24s_and_stay_distinct() {
        let mut rng = rand::rng();
        let exits = hosting_exits(&mut rng, 100, (3, 6));
        assert_eq!(exits.len(), 100);
        let ips: std::collections::HashSet<_> = exits.iter().map(|e| &e.1).collect();
        let prefixes: std::collections::HashSet<_> = exits
            .iter()
            .map(|e| e.1.rsplit_once('.').unwrap().0)
            .collect();
        assert!(ips.len() >= 95, "{} distinct", ips.len());
        assert!(prefixes.len() <= 34, "{} /24s", prefixes.len());
        assert!(exits
            .iter()
            .all(|e| is_hosting(e.0) || UNLISTED_HOSTING_ASNS.contains(&e.0)));
    }

    #[test]
    fn addresses_avoid_reserved_first_octets() {
        let mut rng = rand::rng();
        for asn in [1u32, 7922, 16509, 396982, 4_000_000_000] {
            for _ in 0..200 {
                let ip = address_in(&mut rng, asn, false);
                let first: u32 = ip.split('.').next().unwrap().parse().unwrap();
                assert!(
                    (11..=223).contains(&first)
                        && ![100, 127, 169, 172, 192, 198, 203].contains(&first),
                    "{ip}"
                );
            }
        }
    }
}
