//! Providers in the registry, as Dubbo writes them: the directory
//! `/dubbo/<service>/providers` holds one ephemeral node per provider, named by the
//! provider's URL (`dubbo://host:port/service?key=value&...`, parameters sorted by key)
//! URL-encoded as `URLEncoder` does it. This module turns a `ProviderInfo` into that name
//! and back; it never talks to the registry.

use super::ProviderInfo;

/// The registry directory a service's providers register under.
pub fn providers_dir(service: &str) -> String {
    format!("/dubbo/{}/providers", encode(service))
}

/// A provider's URL, unencoded: `dubbo://n3:20880/inventory?group=&timestamp=..`.
pub fn provider_url(info: &ProviderInfo) -> String {
    // Sorted by key, as Dubbo's `toFullString` writes them.
    format!(
        "dubbo://n{}:{}/{}?group={}&timestamp={}&version={}&warmup={}&weight={}",
        info.node,
        info.port,
        info.service,
        info.group,
        info.timestamp_ms,
        info.version,
        info.warmup_ms,
        info.weight
    )
}

/// The registry node name for a provider: its URL, URL-encoded.
pub fn node_name(info: &ProviderInfo) -> String {
    encode(&provider_url(info))
}

/// A provider back from its node name; None for a name that is not one of ours.
pub fn parse_node_name(name: &str) -> Option<ProviderInfo> {
    let url = decode(name)?;
    let rest = url.strip_prefix("dubbo://n")?;
    let (address, rest) = rest.split_once('/')?;
    let (node, port) = address.split_once(':')?;
    let (service, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut info = ProviderInfo {
        node: node.parse().ok()?,
        port: port.parse().ok()?,
        service: service.to_string(),
        weight: 100,
        warmup_ms: 0,
        timestamp_ms: 0,
        version: String::new(),
        group: String::new(),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "weight" => info.weight = value.parse().ok()?,
            "warmup" => info.warmup_ms = value.parse().ok()?,
            "timestamp" => info.timestamp_ms = value.parse().ok()?,
            "version" => info.version = value.to_string(),
            "group" => info.group = value.to_string(),
            _ => {} // Unknown parameters are kept by Dubbo and ignored here.
        }
    }
    Some(info)
}

/// `URLEncoder.encode(s, "UTF-8")`: letters, digits and `.-*_` stay, a space becomes
/// `+`, every other byte `%XX` (upper-case hex).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The inverse of `encode`; None for a malformed escape or bytes that are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ProviderInfo {
        ProviderInfo {
            node: 3,
            port: 20880,
            service: "inventory".into(),
            weight: 200,
            warmup_ms: 60_000,
            timestamp_ms: 1_633_863_896_653,
            version: "1.0.0".into(),
            group: String::new(),
        }
    }

    #[test]
    fn a_provider_registers_under_its_url_encoded_as_dubbo_does() {
        assert_eq!(
            node_name(&info()),
            "dubbo%3A%2F%2Fn3%3A20880%2Finventory%3Fgroup%3D%26timestamp%3D1633863896653\
             %26version%3D1.0.0%26warmup%3D60000%26weight%3D200"
        );
        assert_eq!(providers_dir("inventory"), "/dubbo/inventory/providers");
        assert_eq!(parse_node_name(&node_name(&info())), Some(info()));
    }

    #[test]
    fn foreign_or_broken_names_are_not_providers() {
        assert_eq!(parse_node_name("node-3"), None);
        assert_eq!(parse_node_name("dubbo%3A%2F%2Fn3"), None);
        assert_eq!(parse_node_name("%zz"), None);
        assert_eq!(encode("a b/c"), "a+b%2Fc");
        assert_eq!(decode("a+b%2Fc").as_deref(), Some("a b/c"));
    }
}
