//! SCRAM (RFC 5802, RFC 7677; Kafka KIP-84): the mechanisms, the salted password, and the
//! client side of an exchange. SASL authentication (`sasl.rs`) runs the exchange; the admin
//! client salts passwords with it for AlterUserScramCredentials (KIP-554).

use crate::error::{Error, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// A SCRAM mechanism: in SASL ([`Sasl::scram`](crate::Sasl::scram)) and in
/// DescribeUserScramCredentials / AlterUserScramCredentials (KIP-554), whose codes these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
    /// A code kafkit does not know.
    Unknown(i8),
}

impl ScramMechanism {
    /// The protocol code.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
            ScramMechanism::Unknown(c) => c,
        }
    }
    /// The value of a protocol code.
    pub fn from_code(c: i8) -> Self {
        match c {
            1 => ScramMechanism::Sha256,
            2 => ScramMechanism::Sha512,
            c => ScramMechanism::Unknown(c),
        }
    }
}

/// The fewest PBKDF2 iterations kafkit accepts from a server, Kafka's minimum
/// (`ScramMechanism.minIterations`): fewer would make a stolen exchange cheap to attack.
pub(crate) const SCRAM_MIN_ITERATIONS: i32 = 4096;
/// The most PBKDF2 iterations kafkit accepts from a server, Kafka's maximum
/// (`ScramMechanism.maxIterations`): more would let a hostile server spend the client's CPU.
pub(crate) const SCRAM_MAX_ITERATIONS: i32 = 16_384;

/// SCRAM's `SaltedPassword`: PBKDF2 with HMAC-SHA-256 or -512 (RFC 5802 §3, RFC 7677).
pub(crate) fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> Result<Vec<u8>> {
    let rounds =
        u32::try_from(iterations).map_err(|_| Error::InvalidArgument(format!("{iterations} SCRAM iterations")))?;
    match mechanism {
        ScramMechanism::Sha256 => Ok(pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt, rounds).to_vec()),
        ScramMechanism::Sha512 => Ok(pbkdf2::pbkdf2_hmac_array::<sha2::Sha512, 64>(password, salt, rounds).to_vec()),
        ScramMechanism::Unknown(c) => Err(Error::InvalidArgument(format!("unknown SCRAM mechanism {c}"))),
    }
}

/// The salted password a connection computed last, with the salt and iteration count it is
/// for: a broker keeps both per user, so the connection's re-authentications (KIP-368) reuse it
/// instead of running PBKDF2 again (4096 rounds or more each time). A new salt (the
/// credential was replaced) computes afresh.
#[derive(Default)]
pub(crate) struct SaltedCache(Option<(Vec<u8>, i32, Vec<u8>)>);

impl SaltedCache {
    /// The salted password of `password` for `salt` and `iterations`, computed on tokio's
    /// blocking threads (PBKDF2 takes milliseconds, far longer without optimisations, and must
    /// not stall the connection's runtime) unless this cache holds it.
    pub(crate) async fn salted(
        &mut self,
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: i32,
    ) -> Result<Vec<u8>> {
        if let Some((s, i, salted)) = &self.0 {
            if *s == salt && *i == iterations {
                return Ok(salted.clone());
            }
        }
        let password = password.to_string();
        let s = salt.clone();
        let salted =
            tokio::task::spawn_blocking(move || salted_password(mechanism, password.as_bytes(), &s, iterations))
                .await
                .map_err(|e| Error::InvalidArgument(format!("computing the SCRAM salted password: {e}")))??;
        self.0 = Some((salt, iterations, salted.clone()));
        Ok(salted)
    }
}

/// The client side of a SCRAM exchange (RFC 5802 §3, §5).
pub(crate) struct ScramClient {
    mechanism: ScramMechanism,
    client_first_bare: String,
    nonce: String,
    /// client-final-message without its proof.
    without_proof: String,
    auth_message: String,
    salted: Vec<u8>,
}

/// SASLprep-light: RFC 5802 §5.1 escaping of the user name.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha512 => {
            let mut m = <Hmac<sha2::Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match mechanism {
        ScramMechanism::Sha512 => sha2::Sha512::digest(data).to_vec(),
        _ => sha2::Sha256::digest(data).to_vec(),
    }
}

impl ScramClient {
    pub(crate) fn new(mechanism: ScramMechanism, user: &str, nonce: &str) -> Self {
        ScramClient {
            mechanism,
            client_first_bare: format!("n={},r={nonce}", saslname(user)),
            nonce: nonce.to_string(),
            without_proof: String::new(),
            auth_message: String::new(),
            salted: Vec::new(),
        }
    }

    /// client-first-message.
    pub(crate) fn first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Reads server-first-message, returns client-final-message (the salted password computed
    /// here: [`ScramClient::read_first`] and [`ScramClient::final_message`] split the two).
    #[cfg(test)]
    pub(crate) fn handle_first(&mut self, password: &str, server_first: &[u8]) -> std::result::Result<String, String> {
        let (salt, iterations) = self.read_first(server_first)?;
        let salted =
            salted_password(self.mechanism, password.as_bytes(), &salt, iterations).map_err(|e| e.to_string())?;
        Ok(self.final_message(salted))
    }

    /// Reads and checks server-first-message; returns the salt and iteration count the salted
    /// password is to be computed with.
    pub(crate) fn read_first(&mut self, server_first: &[u8]) -> std::result::Result<(Vec<u8>, i32), String> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| "the server's first message is not UTF-8".to_string())?;
        let (mut r, mut s, mut i) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => r = Some(v),
                Some(("s", v)) => s = Some(v),
                Some(("i", v)) => i = Some(v),
                Some(("m", _)) => return Err("the server asks for a SCRAM extension kafkit does not know".into()),
                Some(("e", v)) => return Err(format!("the server refused: {v}")),
                _ => {}
            }
        }
        let (Some(r), Some(s), Some(i)) = (r, s, i) else {
            return Err("the server's first message lacks its nonce, salt or iteration count".into());
        };
        if !r.starts_with(&self.nonce) || r.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt =
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| "the salt is not base64".to_string())?;
        let iterations: i32 = i.parse().map_err(|_| "the iteration count is not a number".to_string())?;
        if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the server asks for {iterations} PBKDF2 iterations, outside Kafka's \
                 {SCRAM_MIN_ITERATIONS} to {SCRAM_MAX_ITERATIONS}"
            ));
        }
        self.without_proof = format!("c=biws,r={r}");
        self.auth_message = format!("{},{text},{}", self.client_first_bare, self.without_proof);
        Ok((salt, iterations))
    }

    /// client-final-message, with the salted password for the salt and iteration count
    /// [`ScramClient::read_first`] returned.
    pub(crate) fn final_message(&mut self, salted: Vec<u8>) -> String {
        self.salted = salted;
        let client_key = hmac(self.mechanism, &self.salted, b"Client Key");
        let stored_key = hash(self.mechanism, &client_key);
        let signature = hmac(self.mechanism, &stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        format!("{},p={}", self.without_proof, base64::engine::general_purpose::STANDARD.encode(proof))
    }

    /// Verifies server-final-message: the broker proves it knows the salted password.
    pub(crate) fn verify_final(&self, server_final: &[u8]) -> std::result::Result<(), String> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| "the server's final message is not UTF-8".to_string())?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {e}"));
        }
        let v = text.strip_prefix("v=").ok_or("the server's final message has no signature")?;
        let v = v.split(',').next().unwrap_or_default();
        let got = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|_| "the server signature is not base64".to_string())?;
        let server_key = hmac(self.mechanism, &self.salted, b"Server Key");
        let want = hmac(self.mechanism, &server_key, self.auth_message.as_bytes());
        if got != want {
            return Err("the server's signature does not verify: it does not know this user's credentials".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_password_matches_the_rfc_7914_pbkdf2_vector() {
        // RFC 7914 §11, PBKDF2-HMAC-SHA256 with P="passwd", S="salt", c=1: the first 32
        // bytes of its 64-byte output.
        let out = salted_password(ScramMechanism::Sha256, b"passwd", b"salt", 1).unwrap();
        assert_eq!(
            out,
            [
                0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05, 0xf9,
                0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc
            ]
        );
        assert_eq!(salted_password(ScramMechanism::Sha512, b"p", b"s", 4096).unwrap().len(), 64);
        assert!(salted_password(ScramMechanism::Sha256, b"p", b"s", -1).is_err());
    }

    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        // RFC 7677 §3: user "user", password "pencil", client nonce rOprNGfwEbeRWgbNEkqO.
        let mut c = ScramClient::new(ScramMechanism::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.handle_first("pencil", server_first).unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        // A server that does not know the password cannot forge the signature.
        let e = c.verify_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        assert!(c.verify_final(b"e=invalid-proof").unwrap_err().contains("invalid-proof"));
    }

    #[test]
    fn scram_refuses_a_nonce_that_does_not_extend_ours() {
        let mut c = ScramClient::new(ScramMechanism::Sha512, "u", "abc");
        assert!(c.handle_first("p", b"r=xyz123,s=c2FsdA==,i=4096").is_err());
        assert!(c.handle_first("p", b"r=abc,s=c2FsdA==,i=4096").is_err(), "the server must add to the nonce");
        assert!(c.handle_first("p", b"r=abcdef,s=c2FsdA==,i=0").is_err());
        assert!(c.handle_first("p", b"r=abcdef,s=c2FsdA==,i=4096").is_ok());
    }

    /// A hostile server cannot make the client run PBKDF2 for long (nor weakly): outside
    /// Kafka's 4096 to 16384 iterations the exchange stops before any hashing.
    #[test]
    fn scram_refuses_iteration_counts_outside_kafkas_range() {
        for i in ["4095", "16385", "2147483647", "-1", "99999999999"] {
            let mut c = ScramClient::new(ScramMechanism::Sha256, "u", "abc");
            let first = format!("r=abcdef,s=c2FsdA==,i={i}");
            let e = c.read_first(first.as_bytes()).unwrap_err();
            assert!(e.contains("iteration"), "{i}: {e}");
        }
        for i in [SCRAM_MIN_ITERATIONS, SCRAM_MAX_ITERATIONS] {
            let mut c = ScramClient::new(ScramMechanism::Sha256, "u", "abc");
            let first = format!("r=abcdef,s=c2FsdA==,i={i}");
            assert_eq!(c.read_first(first.as_bytes()).unwrap().1, i);
        }
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
    }
}
