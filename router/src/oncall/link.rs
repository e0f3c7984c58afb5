//! Signed acknowledgement links: `<escalation id>.<expiry unix seconds>.<HMAC-SHA256>` in
//! base64url, so a link in an SMS or a mail acknowledges one escalation until it expires, and
//! a forged, altered or expired one is refused. Without a configured `ack_secret` a random key
//! is used: links then stop working when the router restarts (logged at start).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

#[derive(Debug)]
pub struct Signer {
    key: hmac::Key,
    pub ttl_ms: i64,
    pub ephemeral: bool,
}

impl Signer {
    pub fn new(secret: Option<&str>, ttl_ms: i64) -> Signer {
        let (key, ephemeral) = match secret {
            Some(s) => (hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()), false),
            None => {
                let rng = ring::rand::SystemRandom::new();
                let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
                    hmac::Key::new(hmac::HMAC_SHA256, &uuid::Uuid::new_v4().into_bytes())
                });
                (key, true)
            }
        };
        Signer {
            key,
            ttl_ms,
            ephemeral,
        }
    }

    /// A token for `id`, valid until `now_ms + ttl`.
    pub fn sign(&self, id: &str, now_ms: i64) -> String {
        let exp = (now_ms + self.ttl_ms) / 1000;
        let payload = format!("{id}.{exp}");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()))
    }

    /// The escalation id a token names, if it is genuine and not expired.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<String, &'static str> {
        let (p, t) = token.split_once('.').ok_or("malformed link")?;
        let payload = B64.decode(p).map_err(|_| "malformed link")?;
        let tag = B64.decode(t).map_err(|_| "malformed link")?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| "this link is not genuine")?;
        let payload = String::from_utf8(payload).map_err(|_| "malformed link")?;
        let (id, exp) = payload.rsplit_once('.').ok_or("malformed link")?;
        let exp: i64 = exp.parse().map_err(|_| "malformed link")?;
        if now_ms / 1000 > exp {
            return Err("this link has expired");
        }
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_links_work_until_they_expire() {
        let s = Signer::new(Some("0123456789abcdef"), 3_600_000);
        let t = s.sign("esc1", 1_000_000);
        assert_eq!(s.verify(&t, 1_000_000).as_deref(), Ok("esc1"));
        assert_eq!(s.verify(&t, 1_000_000 + 3_599_000).as_deref(), Ok("esc1"));
        assert_eq!(
            s.verify(&t, 1_000_000 + 3_601_000),
            Err("this link has expired")
        );
    }

    #[test]
    fn forged_and_altered_links_are_refused() {
        let s = Signer::new(Some("0123456789abcdef"), 3_600_000);
        let other = Signer::new(Some("another secret 123"), 3_600_000);
        assert_eq!(
            s.verify(&other.sign("esc1", 0), 0),
            Err("this link is not genuine")
        );
        let t = s.sign("esc1", 0);
        let (p, tag) = t.split_once('.').unwrap();
        let forged = format!("{}.{tag}", B64.encode("esc2.99999999999"));
        assert_eq!(s.verify(&forged, 0), Err("this link is not genuine"));
        assert!(s.verify(p, 0).is_err());
        assert!(s.verify("garbage", 0).is_err());
    }
}
