//! The records every client of the harness sends: the same key and value bytes for record
//! `i`, whichever client sends it and in whatever run.
//!
//! A value is [`SEQ_DIGITS`] decimal digits of the record's sequence number `i` (so every value
//! is distinct and a reader can tell which record it has), followed by a slice of real text
//! starting at a pseudo-random offset that depends on `i` alone. A key is `key_size` lowercase
//! hex digits of a 64-bit hash of `i` (16 by default, distinct for every record), or none.
//!
//! The text ([`Text`]) is at most [`TEXT_BYTES`] of, in this order: the file given by
//! `--payload-text` or `$KAFKIT_PAYLOAD_TEXT` (raw text, or an lz4 frame); the Debian package
//! index under `/var/lib/apt/lists` ([`DEBIAN_PACKAGES`]) when it is there; else text made of
//! words from a fixed list with a Zipf-like choice ([`Text::words`]). `compare` loads it once,
//! writes it to a file and gives that file to every client process, so they all cut their
//! records from the very same bytes.

use bytes::{BufMut, Bytes, BytesMut};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Digits of the sequence number at the start of every value.
pub const SEQ_DIGITS: usize = 12;
/// Key bytes per record unless told otherwise (0 is keyless).
pub const DEFAULT_KEY_SIZE: usize = 16;
/// Most bytes of text the values are cut from (4 MiB): every client process holds it, so it
/// is kept small next to what the clients themselves use.
pub const TEXT_BYTES: usize = 4 << 20;
/// The Debian package index (an lz4 frame, about 50 MB of text), used when present.
pub const DEBIAN_PACKAGES: &str =
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4";
/// The environment variable naming a text file (as `--payload-text` does).
pub const TEXT_ENV: &str = "KAFKIT_PAYLOAD_TEXT";
/// How many bytes of consecutive records [`Payload::lz4_ratio`] compresses (1 MiB, the
/// harness's batch size).
pub const RATIO_BYTES: usize = 1 << 20;

/// The four bytes an lz4 frame starts with.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
const OFFSET_SEED: u64 = 0x6b61_666b_6974_0001;
const KEY_SEED: u64 = 0x6b61_666b_6974_0002;
const WORDS_SEED: u64 = 0x6b61_666b_6974_0003;

/// splitmix64's finalizer: a bijection on u64, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The text values are cut from, and where it came from.
#[derive(Clone, Debug)]
pub struct Text {
    /// The bytes (never empty).
    pub bytes: Bytes,
    /// Where they came from, for the report (e.g. `Debian package index (...), first 4 MiB`).
    pub source: String,
}

impl Text {
    /// The text of `explicit` (`--payload-text`), else of `$KAFKIT_PAYLOAD_TEXT`, else the
    /// Debian package index when present, else [`Text::words`].
    pub fn load(explicit: Option<&Path>) -> Result<Text, String> {
        if let Some(p) = explicit {
            return Text::from_file(p);
        }
        if let Some(p) = std::env::var_os(TEXT_ENV).filter(|p| !p.is_empty()) {
            return Text::from_file(&PathBuf::from(p));
        }
        let debian = Path::new(DEBIAN_PACKAGES);
        if debian.exists() {
            let mut t = Text::from_file(debian)?;
            t.source = format!("Debian package index ({DEBIAN_PACKAGES}), first {} KiB", t.bytes.len() >> 10);
            return Ok(t);
        }
        Ok(Text::words(TEXT_BYTES))
    }

    /// The first [`TEXT_BYTES`] of the file at `path`: decoded when it is an lz4 frame, as it
    /// is otherwise.
    pub fn from_file(path: &Path) -> Result<Text, String> {
        let err = |e: std::io::Error| format!("payload text {}: {e}", path.display());
        let mut f = std::fs::File::open(path).map_err(err)?;
        let mut magic = [0u8; 4];
        let n = read_full(&mut f, &mut magic).map_err(err)?;
        let mut bytes = Vec::with_capacity(TEXT_BYTES.min(1 << 20));
        let framed = n == 4 && magic == LZ4_MAGIC;
        if framed {
            let f = std::io::Cursor::new(magic).chain(f);
            lz4_flex::frame::FrameDecoder::new(f).take(TEXT_BYTES as u64).read_to_end(&mut bytes).map_err(err)?;
        } else {
            bytes.extend_from_slice(&magic[..n]);
            f.take((TEXT_BYTES - n) as u64).read_to_end(&mut bytes).map_err(err)?;
        }
        if bytes.is_empty() {
            return Err(format!("payload text {}: the file is empty", path.display()));
        }
        let kib = bytes.len() >> 10;
        let source = format!("{}{}, first {kib} KiB", path.display(), if framed { " (lz4 frame)" } else { "" });
        Ok(Text { bytes: bytes.into(), source })
    }

    /// `len` bytes of words from a fixed list of 256 (English and package-index words), the
    /// word of rank `r` chosen with a weight of 1/(r+1) (Zipf's law), in lines of about 60
    /// characters; the same bytes every time.
    pub fn words(len: usize) -> Text {
        let words: Vec<&str> = WORDS.split_whitespace().collect();
        // Cumulative weights, scaled to integers, for a binary search per word.
        let mut cum = Vec::with_capacity(words.len());
        let mut total = 0u64;
        for r in 0..words.len() {
            total += 1_000_000_000 / (r as u64 + 1);
            cum.push(total);
        }
        let mut out = Vec::with_capacity(len + 16);
        let (mut state, mut line) = (WORDS_SEED, 0usize);
        while out.len() < len {
            state = mix(state);
            let pick = state % total;
            let w = words[cum.partition_point(|&c| c <= pick)];
            out.extend_from_slice(w.as_bytes());
            line += w.len() + 1;
            if line >= 60 {
                out.push(b'\n');
                line = 0;
            } else {
                out.push(b' ');
            }
        }
        out.truncate(len.max(1));
        Text { bytes: out.into(), source: format!("random words (Zipf over 256, fixed seed), {} KiB", len >> 10) }
    }

    /// Writes the text to `path`, raw (what [`Text::from_file`] reads back as it was).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, &self.bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Reads until `buf` is full or the end of the input; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The keys and values of a load: record `i`'s are [`Payload::key`] and [`Payload::value`].
#[derive(Clone, Debug)]
pub struct Payload {
    text: Bytes,
    source: String,
    value_size: usize,
    key_size: usize,
}

impl Payload {
    /// Values of `value_size` bytes (at least [`SEQ_DIGITS`], at most that plus the text's
    /// length) and keys of `key_size` bytes (0: no keys), cut from `text`.
    pub fn new(text: &Text, value_size: usize, key_size: usize) -> Result<Payload, String> {
        if value_size < SEQ_DIGITS {
            return Err(format!(
                "values of {value_size} B are too small: each starts with a {SEQ_DIGITS}-digit sequence number"
            ));
        }
        if value_size - SEQ_DIGITS > text.bytes.len() {
            return Err(format!(
                "values of {value_size} B need more text than the {} B of {}",
                text.bytes.len(),
                text.source
            ));
        }
        Ok(Payload { text: text.bytes.clone(), source: text.source.clone(), value_size, key_size })
    }

    /// The same values without keys.
    pub fn keyless(&self) -> Payload {
        Payload { key_size: 0, ..self.clone() }
    }

    /// Value bytes per record.
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Key bytes per record (0: keyless).
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Where the text came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The most records a load may have: sequence numbers have [`SEQ_DIGITS`] digits.
    pub fn max_records() -> u64 {
        10u64.pow(SEQ_DIGITS as u32)
    }

    /// Checks that `records` records have distinct sequence numbers.
    pub fn check_records(records: u64) -> Result<(), String> {
        if records > Payload::max_records() {
            return Err(format!(
                "at most {} records: values carry a {SEQ_DIGITS}-digit sequence number",
                Payload::max_records()
            ));
        }
        Ok(())
    }

    /// Appends record `i`'s value ([`Payload::value_size`] bytes) to `out`.
    pub fn put_value(&self, i: u64, out: &mut impl BufMut) {
        let mut seq = [b'0'; SEQ_DIGITS];
        let mut n = i;
        for d in seq.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.put_slice(&seq);
        let len = self.value_size - SEQ_DIGITS;
        let start = (mix(i ^ OFFSET_SEED) % (self.text.len() - len + 1) as u64) as usize;
        out.put_slice(&self.text[start..start + len]);
    }

    /// Writes record `i`'s key into `out` (of [`Payload::key_size`] bytes): lowercase hex
    /// of a hash of `i`, 16 digits per hash, hashed again for longer keys.
    pub fn fill_key(&self, i: u64, out: &mut [u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut h = i;
        for chunk in out.chunks_mut(16) {
            h = mix(h ^ KEY_SEED);
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = HEX[((h >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
    }

    /// Record `i`'s value.
    pub fn value(&self, i: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.value_size);
        self.put_value(i, &mut v);
        v
    }

    /// Record `i`'s key (`None` when keyless).
    pub fn key(&self, i: u64) -> Option<Vec<u8>> {
        (self.key_size > 0).then(|| {
            let mut k = vec![0; self.key_size];
            self.fill_key(i, &mut k);
            k
        })
    }

    /// The lz4 compression ratio (bytes in / bytes out) of [`RATIO_BYTES`] of consecutive
    /// records from record `first`, their keys and values back to back as a batch holds them,
    /// compressed as kafkit compresses a batch (an lz4 frame of 64 KiB blocks).
    pub fn lz4_ratio(&self, first: u64) -> Result<f64, String> {
        let mut raw = Vec::with_capacity(RATIO_BYTES + self.value_size + self.key_size);
        let mut key = vec![0; self.key_size];
        let mut i = first;
        while raw.len() < RATIO_BYTES {
            self.fill_key(i, &mut key);
            raw.extend_from_slice(&key);
            self.put_value(i, &mut raw);
            i += 1;
        }
        let info = lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::with_capacity(raw.len()));
        std::io::Write::write_all(&mut enc, &raw).map_err(|e| format!("lz4: {e}"))?;
        let out = enc.finish().map_err(|e| format!("lz4: {e}"))?;
        Ok(raw.len() as f64 / out.len().max(1) as f64)
    }
}

/// Values as `Bytes` without an allocation per record: each is written into a shared buffer
/// of [`Arena::CHUNK`] bytes and split off it (zero-copy); a full buffer is replaced, and freed
/// once the client drops the last value in it.
pub struct Arena {
    buf: BytesMut,
}

impl Arena {
    /// Bytes per shared buffer (1 MiB).
    pub const CHUNK: usize = 1 << 20;

    /// An empty arena (its first buffer is made on the first value).
    pub fn new() -> Arena {
        Arena { buf: BytesMut::new() }
    }

    /// Record `i`'s value.
    pub fn value(&mut self, p: &Payload, i: u64) -> Bytes {
        self.reserve(p.value_size);
        p.put_value(i, &mut self.buf);
        self.buf.split().freeze()
    }

    /// Record `i`'s key (`None` when keyless).
    pub fn key(&mut self, p: &Payload, i: u64) -> Option<Bytes> {
        if p.key_size == 0 {
            return None;
        }
        self.reserve(p.key_size);
        let at = self.buf.len();
        self.buf.put_bytes(0, p.key_size);
        p.fill_key(i, &mut self.buf[at..]);
        Some(self.buf.split().freeze())
    }

    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.buf = BytesMut::with_capacity(Self::CHUNK.max(n));
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

/// The fallback text's words, the most frequent first.
const WORDS: &str = "
the of and to a in is for on that with by this be it as are from or at an not which
package version depends description size architecture maintainer filename section priority
optional amd64 all main libc6 lib utils data files support common tools library python3
development dev doc server client program module system interface based provides user
used can you will has have if use into also other more its they when only such these
debian org perl gnu linux kernel shared runtime headers static binary source install
config network file text image audio video graphics desktop window manager font fonts
terminal editor command line shell script scripts languages language english translation
documentation html manual pages examples test tests testing build packages dependency
recommends suggests breaks replaces conflicts homepage https www github com tag md5sum
sha256 installed multi arch same foreign allowed essential required standard extra
java ruby rust golang haskell ocaml lisp scheme emacs vim qt gtk gnome kde xfce x11 wayland
protocol format formats parser encoding unicode utf8 compression archive storage database
sql sqlite postgresql mysql cache memory thread threads process event events signal time
date clock timer queue stream streams message messages socket http json xml yaml plugin
plugins extension extensions driver drivers device devices hardware usb bluetooth wireless
security crypto ssl tls key keys certificate authentication password login session account
broker topic partition offset consumer producer record records batch leader replica cluster group commit transaction idempotent retry timeout error errors warning debug release stable update upgrade mirror repository snapshot vendor
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn words_payload(value_size: usize, key_size: usize) -> Payload {
        Payload::new(&Text::words(TEXT_BYTES), value_size, key_size).unwrap()
    }

    #[test]
    fn the_word_list_has_256_distinct_words() {
        let w: Vec<&str> = WORDS.split_whitespace().collect();
        assert_eq!(w.len(), 256);
        assert_eq!(w.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn records_are_deterministic_distinct_and_of_the_sizes_asked_for() {
        for (value_size, key_size) in [(100, 16), (1024, 16), (12, 0), (300, 40)] {
            let p = words_payload(value_size, key_size);
            // Made again from scratch: the same bytes (what every client process does).
            let q = words_payload(value_size, key_size);
            let (mut values, mut keys) = (HashSet::new(), HashSet::new());
            for i in 0..20_000u64 {
                let v = p.value(i);
                assert_eq!(v.len(), value_size);
                assert_eq!(v, q.value(i));
                assert_eq!(&v[..SEQ_DIGITS], format!("{i:012}").as_bytes());
                assert!(values.insert(v), "value {i} repeats");
                match p.key(i) {
                    None => assert_eq!(key_size, 0),
                    Some(k) => {
                        assert_eq!(k.len(), key_size);
                        assert!(k.iter().all(|b| b.is_ascii_hexdigit()));
                        assert_eq!(Some(&k), q.key(i).as_ref());
                        assert!(keys.insert(k), "key {i} repeats");
                    }
                }
            }
        }
        // Far sequence numbers too.
        let p = words_payload(100, 16);
        assert_eq!(&p.value(999_999_999_999)[..SEQ_DIGITS], b"999999999999");
        assert_eq!(p.key(7).unwrap().len(), DEFAULT_KEY_SIZE);
    }

    #[test]
    fn values_start_their_text_at_different_offsets() {
        let p = words_payload(100, 0);
        let tails: HashSet<Vec<u8>> = (0..1000).map(|i| p.value(i)[SEQ_DIGITS..].to_vec()).collect();
        assert!(tails.len() > 990, "only {} distinct text slices of 1000", tails.len());
    }

    #[test]
    fn the_arena_gives_the_same_bytes_as_the_payload() {
        let p = words_payload(1000, 16);
        let mut a = Arena::new();
        // Past a chunk boundary (1 MiB / 1016 B a record).
        for i in 0..3000 {
            assert_eq!(a.key(&p, i).as_deref(), p.key(i).as_deref());
            assert_eq!(&a.value(&p, i)[..], &p.value(i)[..]);
        }
        assert!(a.key(&words_payload(100, 0), 1).is_none());
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        let t = Text::words(1000);
        assert!(Payload::new(&t, 11, 16).unwrap_err().contains("too small"));
        assert!(Payload::new(&t, 1013, 16).unwrap_err().contains("need more text"));
        assert!(Payload::new(&t, 1012, 16).is_ok());
        assert!(Payload::check_records(Payload::max_records()).is_ok());
        assert!(Payload::check_records(Payload::max_records() + 1).is_err());
    }

    #[test]
    fn text_files_are_read_raw_or_as_lz4_frames() {
        let dir = std::env::temp_dir();
        let raw = dir.join(format!("kafkit-peers-text-{}.txt", std::process::id()));
        let framed = dir.join(format!("kafkit-peers-text-{}.lz4", std::process::id()));
        let t = Text::words(100_000);
        t.write(&raw).unwrap();
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut enc, &t.bytes).unwrap();
        std::fs::write(&framed, enc.finish().unwrap()).unwrap();
        assert_eq!(Text::from_file(&raw).unwrap().bytes, t.bytes);
        let f = Text::from_file(&framed).unwrap();
        assert_eq!(f.bytes, t.bytes);
        assert!(f.source.contains("lz4 frame"), "{}", f.source);
        std::fs::write(&raw, b"").unwrap();
        assert!(Text::from_file(&raw).unwrap_err().contains("empty"));
        let _ = std::fs::remove_file(&raw);
        let _ = std::fs::remove_file(&framed);
        assert!(Text::from_file(&dir.join("kafkit-peers-no-such-file")).is_err());
    }

    #[test]
    fn the_fallback_words_gain_1_5_to_5x_under_lz4() {
        for size in [100, 1024] {
            let r = words_payload(size, 16).lz4_ratio(0).unwrap();
            println!("random words, {size} B values, 16 B keys: lz4 {r:.2}x");
            assert!((1.5..5.0).contains(&r), "lz4 ratio {r:.2} for {size} B values");
        }
    }

    /// On a machine without the Debian package index this checks nothing: it says so, and its
    /// name says that it may be skipped.
    #[test]
    fn debian_text_gains_1_5_to_5x_under_lz4_or_is_skipped_when_absent() {
        if !Path::new(DEBIAN_PACKAGES).exists() {
            println!("SKIPPED (not passed): {DEBIAN_PACKAGES} is absent, the real-text ratio was not checked");
            return;
        }
        let t = Text::from_file(Path::new(DEBIAN_PACKAGES)).unwrap();
        assert_eq!(t.bytes.len(), TEXT_BYTES);
        assert!(t.bytes.starts_with(b"Package: "), "{:?}", &t.bytes[..20]);
        for size in [100, 1024] {
            let p = Payload::new(&t, size, 16).unwrap();
            let keyless = Payload::new(&t, size, 0).unwrap();
            let (r, r0) = (p.lz4_ratio(0).unwrap(), keyless.lz4_ratio(0).unwrap());
            println!("Debian text, {size} B values: lz4 {r:.2}x with 16 B keys, {r0:.2}x keyless");
            assert!((1.5..5.0).contains(&r), "lz4 ratio {r:.2} for {size} B values");
            assert!((1.5..5.0).contains(&r0), "lz4 ratio {r0:.2} for {size} B keyless values");
        }
    }
}
