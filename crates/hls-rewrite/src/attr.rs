//! Finding the `URI="..."` attribute in a tag's attribute list (RFC 8216 section 4.2).

use std::ops::Range;

/// The byte range of the quoted value of the `URI` attribute in `attrs` (quotes excluded).
/// `None` if there is none, or the list is too broken to be sure (an unterminated quote):
/// then the line is left as it is.
pub(crate) fn find_uri(attrs: &str) -> Option<Range<usize>> {
    let bytes = attrs.as_bytes();
    let mut i = 0;
    loop {
        let name_start = i;
        while let Some(&c) = bytes.get(i) {
            if c == b'=' || c == b',' {
                break;
            }
            i += 1;
        }
        let name = attrs.get(name_start..i)?.trim();
        match bytes.get(i) {
            None => return None,
            Some(b',') => {
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        if bytes.get(i) == Some(&b'"') {
            let start = i + 1;
            let end = start + attrs.get(start..)?.find('"')?;
            if name == "URI" {
                return Some(start..end);
            }
            i = end + 1;
        }
        // Skip the rest of the value (all of an unquoted one) up to the next comma.
        i += attrs.get(i..)?.find(',')? + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(attrs: &str) -> Option<&str> {
        find_uri(attrs).and_then(|r| attrs.get(r))
    }

    #[test]
    fn finds_uri() {
        assert_eq!(uri(r#"URI="init.mp4""#), Some("init.mp4"));
        assert_eq!(
            uri(r#"METHOD=AES-128,URI="k.key?a=1,b",IV=0x1"#),
            Some("k.key?a=1,b")
        );
        assert_eq!(
            uri(r#"TYPE=AUDIO,NAME="a,URI=x",URI="a.m3u8""#),
            Some("a.m3u8")
        );
        assert_eq!(uri(r#"DURATION=1.0, URI="p.m4s""#), Some("p.m4s"));
        assert_eq!(uri(r#"URI="""#), Some(""));
    }

    #[test]
    fn ignores_other_names_and_broken_lists() {
        assert_eq!(uri(r#"X-URI="a",SERVER-URI="b""#), None);
        assert_eq!(uri(r#"METHOD=NONE"#), None);
        assert_eq!(uri(r#"URI="unterminated"#), None);
        assert_eq!(uri(r#"URI=unquoted.key"#), None);
        assert_eq!(uri(""), None);
        assert_eq!(uri(",,,="), None);
        assert_eq!(uri(r#"A="x"junk,URI="y""#), Some("y"));
    }
}
