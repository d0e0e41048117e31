package main

// The records every client of the harness sends, ported byte for byte from
// crates/kafkit-peers/src/payload.rs: record i has the same key and value here as in
// `kafkit-peers client kafkit|rdkafka|rskafka produce`.
//
// A value is seqDigits (12) decimal digits of the sequence number i, zero-padded, then
// valueSize-12 bytes of text starting at mix(i ^ offsetSeed) % (len(text) - (valueSize-12) + 1).
// A key is keySize lowercase hex digits: 16 per 64-bit hash h = mix(h ^ keySeed) (h starts at
// i and is hashed again for each further 16 digits), most significant nibble first; none when
// keySize is 0.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/pierrec/lz4/v4"
)

const (
	// Digits of the sequence number at the start of every value.
	seqDigits = 12
	// Key bytes per record unless told otherwise (0 is keyless).
	defaultKeySize = 16
	// Most bytes of text the values are cut from (4 MiB).
	textBytes = 4 << 20
	// The Debian package index (an lz4 frame), used when present and no text is named.
	debianPackages = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
	// The environment variable naming a text file (as --payload-text does).
	textEnv = "KAFKIT_PAYLOAD_TEXT"

	offsetSeed uint64 = 0x6b61_666b_6974_0001
	keySeed    uint64 = 0x6b61_666b_6974_0002
	wordsSeed  uint64 = 0x6b61_666b_6974_0003
)

// The four bytes an lz4 frame starts with.
var lz4Magic = []byte{0x04, 0x22, 0x4d, 0x18}

// mix is splitmix64's finalizer: a bijection on uint64 (arithmetic wraps, as Rust's
// wrapping_add/wrapping_mul do).
func mix(z uint64) uint64 {
	z += 0x9e37_79b9_7f4a_7c15
	z = (z ^ (z >> 30)) * 0xbf58_476d_1ce4_e5b9
	z = (z ^ (z >> 27)) * 0x94d0_49bb_1331_11eb
	return z ^ (z >> 31)
}

// loadText is Text::load: the file named by explicit (--payload-text), else by
// $KAFKIT_PAYLOAD_TEXT, else the Debian package index when present, else words(textBytes).
func loadText(explicit string) (text []byte, source string, err error) {
	if explicit != "" {
		return textFromFile(explicit)
	}
	if p := os.Getenv(textEnv); p != "" {
		return textFromFile(p)
	}
	if _, err := os.Stat(debianPackages); err == nil {
		t, _, err := textFromFile(debianPackages)
		if err != nil {
			return nil, "", err
		}
		return t, fmt.Sprintf("Debian package index (%s), first %d KiB", debianPackages, len(t)>>10), nil
	}
	t := words(textBytes)
	return t, fmt.Sprintf("random words (Zipf over 256, fixed seed), %d KiB", textBytes>>10), nil
}

// textFromFile is Text::from_file: the first textBytes of the file, decoded when it is an lz4
// frame, as it is otherwise (compare writes the text raw).
func textFromFile(path string) ([]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("payload text %s: %w", path, err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	n, err := io.ReadFull(f, magic)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, "", fmt.Errorf("payload text %s: %w", path, err)
	}
	framed := n == 4 && bytes.Equal(magic, lz4Magic)
	var out []byte
	if framed {
		r := lz4.NewReader(io.MultiReader(bytes.NewReader(magic), f))
		out, err = io.ReadAll(io.LimitReader(r, textBytes))
	} else {
		rest, e := io.ReadAll(io.LimitReader(f, int64(textBytes-n)))
		out, err = append(magic[:n:n], rest...), e
	}
	if err != nil {
		return nil, "", fmt.Errorf("payload text %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("payload text %s: the file is empty", path)
	}
	lz := ""
	if framed {
		lz = " (lz4 frame)"
	}
	return out, fmt.Sprintf("%s%s, first %d KiB", path, lz, len(out)>>10), nil
}

// words is Text::words: n bytes of words from wordList, the word of rank r chosen with a
// weight of 1/(r+1), in lines of about 60 characters; the same bytes every time.
func words(n int) []byte {
	ws := strings.Fields(wordList)
	cum := make([]uint64, len(ws))
	var total uint64
	for r := range ws {
		total += 1_000_000_000 / (uint64(r) + 1)
		cum[r] = total
	}
	out := make([]byte, 0, n+16)
	state, line := wordsSeed, 0
	for len(out) < n {
		state = mix(state)
		pick := state % total
		// Rust's partition_point(|&c| c <= pick): the first rank whose cumulative weight is above pick.
		w := ws[sort.Search(len(cum), func(i int) bool { return cum[i] > pick })]
		out = append(out, w...)
		line += len(w) + 1
		if line >= 60 {
			out = append(out, '\n')
			line = 0
		} else {
			out = append(out, ' ')
		}
	}
	return out[:max(n, 1)]
}

// payload is Payload: the keys and values of a load.
type payload struct {
	text      []byte
	source    string
	valueSize int // bytes per value, at least seqDigits
	keySize   int // bytes per key, 0: keyless
}

// maxRecords: sequence numbers have seqDigits digits.
const maxRecords uint64 = 1_000_000_000_000

func newPayload(text []byte, source string, valueSize, keySize int) (*payload, error) {
	if valueSize < seqDigits {
		return nil, fmt.Errorf("values of %d B are too small: each starts with a %d-digit sequence number", valueSize, seqDigits)
	}
	if valueSize-seqDigits > len(text) {
		return nil, fmt.Errorf("values of %d B need more text than the %d B of %s", valueSize, len(text), source)
	}
	if keySize < 0 {
		return nil, fmt.Errorf("a key size of %d B: it must be 0 (keyless) or more", keySize)
	}
	return &payload{text: text, source: source, valueSize: valueSize, keySize: keySize}, nil
}

// putValue writes record i's value into out (len(out) == p.valueSize).
func (p *payload) putValue(i uint64, out []byte) {
	n := i
	for d := seqDigits - 1; d >= 0; d-- {
		out[d] = '0' + byte(n%10)
		n /= 10
	}
	l := p.valueSize - seqDigits
	start := mix(i^offsetSeed) % uint64(len(p.text)-l+1)
	copy(out[seqDigits:], p.text[start:start+uint64(l)])
}

// fillKey writes record i's key into out (len(out) == p.keySize).
func (p *payload) fillKey(i uint64, out []byte) {
	const hex = "0123456789abcdef"
	h := i
	for c := 0; c < len(out); c += 16 {
		h = mix(h ^ keySeed)
		for j := 0; j < 16 && c+j < len(out); j++ {
			out[c+j] = hex[(h>>(60-4*uint(j)))&0xf]
		}
	}
}

// arena hands out key and value buffers cut from shared 1 MiB chunks (one allocation per
// chunk, not per record), as payload.rs's Arena does; a chunk is freed by the GC once the
// client drops the last record in it.
type arena struct{ buf []byte }

const arenaChunk = 1 << 20

func (a *arena) take(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(arenaChunk, n))
	}
	at := len(a.buf)
	a.buf = a.buf[:at+n]
	return a.buf[at : at+n : at+n]
}

// key is record i's key, nil when keyless.
func (a *arena) key(p *payload, i uint64) []byte {
	if p.keySize == 0 {
		return nil
	}
	k := a.take(p.keySize)
	p.fillKey(i, k)
	return k
}

// value is record i's value.
func (a *arena) value(p *payload, i uint64) []byte {
	v := a.take(p.valueSize)
	p.putValue(i, v)
	return v
}

// parseSeq reads the sequence number at the start of a value.
func parseSeq(v []byte) (uint64, bool) {
	if len(v) < seqDigits {
		return 0, false
	}
	var s uint64
	for _, c := range v[:seqDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		s = s*10 + uint64(c-'0')
	}
	return s, true
}

// The fallback text's words, the most frequent first (payload.rs's WORDS, verbatim).
const wordList = `
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
`
