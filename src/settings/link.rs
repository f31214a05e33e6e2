//! Share links: settings and style URLs in a URL fragment, and back, exactly.

use super::*;

/// What a share link holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ShareLink {
    pub settings: Settings,
    /// Style images by URL (http/https only) and their blend weights.
    pub style_urls: Vec<(String, f32)>,
    pub content_url: Option<String>,
    /// Everything that was ignored, and why (unknown keys, bad values, bad URLs...).
    pub warnings: Vec<String>,
}

/// The share-link format written now. Version 2 came with coarse to fine as the default: a link
/// without `v=` (version 1) left out the options at the old defaults, which
/// [`parse_share_fragment`] puts back (see [`legacy_defaults`]).
pub const LINK_VERSION: u32 = 2;

/// Settings at the defaults of version 1 links (before 2026-12-06's defaults: one scale, 500 steps),
/// starting from `base` (the link's preset, or the defaults), for the options a link leaves out.
pub fn legacy_defaults(mut base: Settings) -> Settings {
    if matches!(base.preset.as_deref(), None | Some("default")) {
        base.steps = 500;
        base.scales = Scales::Off;
        base.min_size = 0;
    }
    base
}

/// `v=2&key=value&...` (no leading `#`): the format version, the preset (if any) and only the options that differ
/// from it, then the style URLs as `style=WEIGHT:URL`. [`parse_share_fragment`] restores all of it
/// exactly, with two documented exceptions: an `init` that is a file path is left out (a link
/// cannot carry a local file), and URLs that are not http(s) (e.g. `blob:` or `data:` URLs of the
/// user's own uploads) are left out — uploads are never put in a link.
pub fn to_share_fragment(settings: &Settings, style_urls: &[(String, f32)]) -> String {
    to_share_fragment_with_content(settings, None, style_urls)
}

/// [`to_share_fragment`] plus a content image URL (`content=URL`), e.g. for a sample image.
pub fn to_share_fragment_with_content(
    settings: &Settings,
    content_url: Option<&str>,
    style_urls: &[(String, f32)],
) -> String {
    let base = settings.preset.as_deref().and_then(preset);
    let mut pairs: Vec<(&str, String)> = vec![("v", LINK_VERSION.to_string())];
    if let Some(b) = &base {
        pairs.push(("preset", b.preset.clone().unwrap_or_default()));
    }
    let base = base.unwrap_or_default();
    for key in KEYS {
        if key == "init" && matches!(settings.init, Init::Path(_)) {
            continue;
        }
        let (mine, theirs) = (settings.get(key), base.get(key));
        // Changing the optimizer resets lr unless lr is given too, so lr then always travels.
        let forced = key == "lr" && settings.optimizer != base.optimizer;
        if mine != theirs || forced {
            pairs.push((key, mine.unwrap_or_default()));
        }
    }
    if let Some(url) = content_url.filter(|u| check_url(u).is_ok()) {
        pairs.push(("content", url.to_string()));
    }
    for (url, weight) in style_urls {
        if check_url(url).is_ok() && check_weight(*weight).is_ok() {
            pairs.push(("style", format!("{}:{url}", fmt_float(*weight))));
        }
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads a share link fragment (with or without a leading `#` or `?`). Never fails and never
/// panics: anything unusable is reported in `warnings` and ignored, leaving the preset's (or the
/// default) value in place.
pub fn parse_share_fragment(fragment: &str) -> ShareLink {
    let mut warnings = Vec::new();
    let link = |settings: Settings, style_urls, content_url, warnings| ShareLink {
        settings,
        style_urls,
        content_url,
        warnings,
    };
    let text = fragment
        .strip_prefix('#')
        .or_else(|| fragment.strip_prefix('?'))
        .unwrap_or(fragment);
    if text.len() > MAX_FRAGMENT_BYTES {
        warnings.push(format!(
            "the link is {} bytes, more than the {MAX_FRAGMENT_BYTES} allowed; it was ignored",
            text.len()
        ));
        return link(Settings::default(), Vec::new(), None, warnings);
    }

    let mut preset_name: Option<String> = None;
    let mut version = 1;
    let mut overrides = Overrides::default();
    let mut seen: Vec<String> = Vec::new();
    let mut content_url: Option<String> = None;
    let mut style_urls: Vec<(String, f32)> = Vec::new();
    const MAX_WARNINGS: usize = 50;

    for piece in text.split('&').filter(|p| !p.is_empty()) {
        if warnings.len() >= MAX_WARNINGS {
            warnings.push("too many problems in the link; the rest was ignored".into());
            break;
        }
        let Some((raw_key, raw_value)) = piece.split_once('=') else {
            warnings.push(format!("{} is not key=value; ignored", show(piece)));
            continue;
        };
        let (key, value) = match (percent_decode(raw_key), percent_decode(raw_value)) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => {
                warnings.push(format!("{}: {e}; ignored", show(piece)));
                continue;
            }
        };
        let repeatable = key == "style";
        if !repeatable && seen.contains(&key) {
            warnings.push(format!(
                "{} is given twice; the first value is used",
                show(&key)
            ));
            continue;
        }
        match key.as_str() {
            "v" => match value.parse::<u32>() {
                Ok(v @ 1..=LINK_VERSION) => version = v,
                _ => {
                    warnings.push(format!("v: expected a link version from 1 to {LINK_VERSION}, got {}; read as {LINK_VERSION}", show(&value)));
                    version = LINK_VERSION;
                }
            },
            "preset" => {
                if preset(&value).is_some() {
                    preset_name = Some(value);
                } else {
                    warnings.push(format!("{}; ignored", unknown_preset(&value)));
                }
            }
            "content" => match check_url(&value) {
                Ok(()) => content_url = Some(value),
                Err(e) => warnings.push(format!("content: {e}; ignored")),
            },
            "style" => {
                if style_urls.len() >= MAX_STYLES {
                    warnings.push(format!(
                        "more than {MAX_STYLES} style images; the rest were ignored"
                    ));
                    continue;
                }
                match parse_style_value(&value) {
                    Ok(pair) => style_urls.push(pair),
                    Err(e) => warnings.push(format!("style: {e}; ignored")),
                }
            }
            "init"
                if !matches!(
                    Init::parse(&value),
                    Ok(Init::Content | Init::Noise | Init::Style)
                ) =>
            {
                warnings.push(format!(
                    "init: {} is not content, noise or style (a link cannot name a file); ignored",
                    show(&value)
                ));
            }
            k if KEYS.contains(&k) => {
                if let Err(e) = overrides.set(k, &value) {
                    warnings.push(format!("{e}; ignored"));
                }
            }
            _ => warnings.push(format!("unknown key {}; ignored", show(&key))),
        }
        seen.push(key);
    }

    let mut base = preset_name.as_deref().and_then(preset).unwrap_or_default();
    if version == 1 {
        base = legacy_defaults(base);
    }
    let mut settings = base.clone();
    settings.apply(&overrides);
    if let Err(e) = settings.validate() {
        // Every value was range-checked on its own, so this is not expected; stay safe anyway.
        warnings.push(format!("{e}; the link's options were ignored"));
        settings = base;
    }
    if !style_urls.is_empty() && style_urls.iter().map(|(_, w)| *w).sum::<f32>() <= 0.0 {
        warnings.push("the style weights sum to 0; using equal weights".into());
        for (_, w) in &mut style_urls {
            *w = 1.0;
        }
    }
    link(settings, style_urls, content_url, warnings)
}

/// `WEIGHT:URL`, or a bare URL (weight 1).
fn parse_style_value(value: &str) -> Result<(String, f32), String> {
    let (weight, url) = match value.split_once(':') {
        // A number before the first ':' is a weight; otherwise the ':' belongs to the URL's scheme.
        Some((w, url)) if w.trim().parse::<f32>().is_ok() => {
            let w = parse_f32(w)
                .and_then(check_weight)
                .map_err(|e| format!("bad weight: {e}"))?;
            (w, url)
        }
        _ => (1.0, value),
    };
    check_url(url)?;
    Ok((url.to_string(), weight))
}

/// A URL a link may name: http or https with a host, bounded length, no spaces or control
/// characters. Anything else (javascript:, data:, blob:, file:...) is refused.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "the URL is {} bytes, more than {MAX_URL_BYTES}",
            url.len()
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(format!("{} is not an http(s) URL", show(url)));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{} contains spaces or control characters",
            show(url)
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{} has no host", show(url)));
    }
    Ok(())
}

/// Percent-encodes everything except unreserved characters and `:/,@` (kept readable; none of
/// them means anything to our `&`/`=` parser).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/,@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a `+` stays a `+`); refuses a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                    out.push(b)
                }
                _ => return Err("bad %-escape".into()),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "%-escapes that are not UTF-8".into())
}
