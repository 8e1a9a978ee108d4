// SPDX-License-Identifier: GPL-2.0

//! Structure-aware fuzzing of the `extmem=` parser: many generated strings, no panic, every
//! accepted entry within the rules, clean entries parsed to exactly what was written, and
//! accepted entries round-tripping through `Display`.
//!
//! The generator builds a string from entries it knows (node, size, address, each written in
//! one of the syntaxes the parser reads, near the edges: 0, the granule, `u32`/`u64` limits,
//! `phys + size` at 2^64), then mutates some of them (a byte flipped, inserted or deleted; a
//! separator doubled; a suffix garbled) and sometimes repeats or truncates the list. For the
//! entries it did not mutate it computes the expected outcome independently of the parser.
//!
//! `PARAM_FUZZ_CASES` (default 200000) and `PARAM_FUZZ_SEED` (default fixed, so CI is
//! reproducible; the seed is printed) control the run.

use extmem_core::param::{parse, Bytes, Entry, Reject, Rules, MAX_ENTRIES};

const MIB: u64 = 1 << 20;
const GRANULE: u64 = 128 * MIB;
/// The kernel's: `MAX_NUMNODES` (`NODES_SHIFT=6`) and `1 << SECTION_SIZE_BITS` on x86_64.
const RULES: Rules = Rules {
    max_nodes: 64,
    granule: GRANULE,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A byte count near an interesting edge.
fn edge_value(rng: &mut Rng) -> u64 {
    let g = GRANULE;
    match rng.below(14) {
        0 => 0,
        1 => g,
        2 => g * (1 + rng.below(64)),
        3 => g * rng.below(1 << 20),
        4 => u64::MAX,
        5 => u64::MAX - g + 1, // the last granule
        6 => 1 << 63,
        7 => (1 << 63) - g,
        8 => g - 1 + rng.below(2) * 2, // g-1 or g+1
        9 => u64::from(u32::MAX) + rng.below(2),
        10 => 1 << rng.below(64),
        11 => rng.next(),
        12 => rng.next() & !(g - 1),
        _ => (1 + rng.below(8)) << 30,
    }
}

/// Writes `v` in one of the forms the parser reads; returns `None` when the value cannot be
/// written exactly in the chosen form (then the caller writes it in decimal).
fn write_number(rng: &mut Rng, v: u64) -> String {
    let suffixes: [(u32, [&str; 2]); 4] = [
        (10, ["K", "k"]),
        (20, ["M", "m"]),
        (30, ["G", "g"]),
        (40, ["T", "t"]),
    ];
    match rng.below(6) {
        0 => format!("{:#x}", v),
        1 => format!("0X{:X}", v),
        2 => format!("{:0>width$}", v, width = 1 + rng.below(24) as usize), // leading zeros
        3 | 4 => {
            let (shift, names) = rng.pick(&suffixes);
            if v != 0 && v.trailing_zeros() >= *shift {
                let name = names[rng.below(2) as usize];
                if rng.chance(30) {
                    format!("{:#x}{}", v >> shift, name)
                } else {
                    format!("{}{}", v >> shift, name)
                }
            } else {
                v.to_string()
            }
        }
        _ => v.to_string(),
    }
}

/// A number that is too large for 64 bits once its suffix is applied, or as digits.
fn overflowing_number(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => "18446744073709551616".to_string(),           // 2^64
        1 => "0x10000000000000000".to_string(),            // 2^64 in hex
        2 => format!("{}T", 1u64 << (24 + rng.below(40))), // << 40 overflows
        3 => format!("{}G", u64::MAX >> rng.below(30)),
        _ => "9".repeat(20 + rng.below(40) as usize),
    }
}

/// What the generator meant one entry to be.
#[derive(Clone, Debug)]
struct Planned {
    text: String,
    /// The expected outcome for an entry written cleanly, before the overlap check; `None`
    /// when the entry was mutated (anything may happen then, within the rules).
    expect: Option<Result<Entry, Reject>>,
}

fn planned_entry(rng: &mut Rng) -> Planned {
    // The node.
    let (node_text, node_val): (String, Option<u64>) = match rng.below(12) {
        0 => ("".into(), None),
        1 => (format!("{}", 64 + rng.below(1000)), Some(64)),
        2 => (u32::MAX.to_string(), Some(u64::from(u32::MAX))),
        3 => ("4294967296".into(), Some(1 << 32)), // overflows u32
        4 => (format!("{:0>5}", rng.below(64)), None), // leading zeros: decimal still
        5 => ("-1".into(), None),
        6 => ("0x1".into(), None),
        _ => {
            let n = rng.below(64);
            (n.to_string(), Some(n))
        }
    };
    // Leading-zero nodes are plain decimal; recompute their value.
    let node_val = node_val.or_else(|| {
        (!node_text.is_empty() && node_text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| node_text.parse::<u64>().unwrap_or(u64::MAX))
    });

    let mut expect_size: Result<u64, Reject>;
    let size_text = if rng.chance(7) {
        expect_size = Err(Reject::Overflow);
        overflowing_number(rng)
    } else {
        let v = edge_value(rng);
        expect_size = Ok(v);
        write_number(rng, v)
    };
    let phys = rng.chance(40);
    let mut expect_phys: Option<Result<u64, Reject>> = None;
    let phys_text = if !phys {
        String::new()
    } else if rng.chance(7) {
        expect_phys = Some(Err(Reject::Overflow));
        overflowing_number(rng)
    } else {
        let v = match rng.below(4) {
            0 => edge_value(rng),
            _ => GRANULE * rng.below(64), // low memory, where overlaps happen
        };
        expect_phys = Some(Ok(v));
        write_number(rng, v)
    };

    let mut text = format!("{}:{}", node_text, size_text);
    if phys {
        text.push('@');
        text.push_str(&phys_text);
    }

    // The reference outcome of a clean entry.
    let expect = (|| -> Result<Entry, Reject> {
        let node = match node_val {
            None if node_text.is_empty() || !node_text.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(Reject::BadNode)
            }
            None => unreachable!(),
            Some(n) if n >= u64::from(RULES.max_nodes) => return Err(Reject::NodeOutOfRange),
            Some(n) => n as u32,
        };
        let size = std::mem::replace(&mut expect_size, Ok(0))?;
        if size == 0 {
            return Err(Reject::ZeroSize);
        }
        if size % GRANULE != 0 {
            return Err(Reject::SizeUnaligned);
        }
        let phys = match expect_phys.take() {
            None => None,
            Some(p) => {
                let p = p?;
                if p % GRANULE != 0 {
                    return Err(Reject::PhysUnaligned);
                }
                p.checked_add(size).ok_or(Reject::Overflow)?;
                Some(p)
            }
        };
        Ok(Entry { node, size, phys })
    })();

    // Mutations: the reference no longer applies.
    if rng.chance(25) {
        let mut bytes = text.into_bytes();
        // No ',': a split entry would no longer line up with its plan.
        let junk = b"0123456789xXkKmMgGtTpPeE:@. \t-+=\"'\\;\0\x7f";
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = *rng.pick(junk),
                2 => bytes.insert(at, *rng.pick(junk)),
                _ => {
                    let tails: [&[u8]; 7] = [b"K", b"KB", b"MiB", b"@", b"::", b"@@0", b"g0"];
                    let tail = tails[rng.below(tails.len() as u64) as usize];
                    bytes.extend_from_slice(tail)
                }
            }
        }
        // Mutations stay ASCII, so this cannot fail.
        return Planned {
            text: String::from_utf8(bytes).unwrap(),
            expect: None,
        };
    }
    Planned {
        text,
        expect: Some(expect),
    }
}

fn generate(rng: &mut Rng) -> (String, Vec<Planned>) {
    let n = match rng.below(10) {
        0 => 0,
        1 => MAX_ENTRIES as u64 + rng.below(20), // too many
        2 => MAX_ENTRIES as u64,
        _ => 1 + rng.below(6),
    };
    let mut plan: Vec<Planned> = Vec::new();
    for _ in 0..n {
        match rng.below(20) {
            0 => plan.push(Planned {
                text: String::new(),
                expect: Some(Err(Reject::Empty)),
            }),
            1 if !plan.is_empty() => {
                let again = plan[rng.below(plan.len() as u64) as usize].clone(); // repeated
                plan.push(again);
            }
            _ => plan.push(planned_entry(rng)),
        }
    }
    let s = plan
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(",");
    (s, plan)
}

fn overlaps(a: &Entry, b: &Entry) -> bool {
    match (a.phys, a.fixed_end(), b.phys, b.fixed_end()) {
        (Some(s1), Some(e1), Some(s2), Some(e2)) => s1 < e2 && s2 < e1,
        _ => false,
    }
}

/// Checks everything the parser promises about one string; returns a failure description.
fn check(s: &str, plan: Option<&[Planned]>) -> Result<(), String> {
    let p = parse(s, &RULES);
    let pieces: Vec<&str> = if s.is_empty() {
        vec![]
    } else {
        s.split(',').collect()
    };
    let outcomes: Vec<_> = p.outcomes().copied().collect();
    if outcomes.len() != pieces.len().min(MAX_ENTRIES) {
        return Err(format!(
            "{} outcomes for {} entries",
            outcomes.len(),
            pieces.len()
        ));
    }
    let (extra, extra_text) = p.too_many();
    if extra != pieces.len().saturating_sub(MAX_ENTRIES) {
        return Err(format!("too_many {} for {} entries", extra, pieces.len()));
    }
    if extra > 0 && extra_text != pieces[MAX_ENTRIES..].join(",") {
        return Err(format!("too_many text {:?}", extra_text));
    }
    let mut accepted: Vec<Entry> = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        if o.index != i || o.text != pieces[i] {
            return Err(format!(
                "outcome {} is index {} text {:?}",
                i, o.index, o.text
            ));
        }
        match o.result {
            Ok(e) => {
                if e.node >= RULES.max_nodes || e.size == 0 || e.size % GRANULE != 0 {
                    return Err(format!("entry {} accepted outside the rules: {:?}", i, e));
                }
                if let Some(ph) = e.phys {
                    if ph % GRANULE != 0 || ph.checked_add(e.size).is_none() {
                        return Err(format!("entry {} accepted outside the rules: {:?}", i, e));
                    }
                }
                if let Some(a) = accepted.iter().find(|a| overlaps(a, &e)) {
                    return Err(format!("entry {} {:?} overlaps accepted {:?}", i, e, a));
                }
                // Round trip: the formatted entry parses back to itself.
                let text = e.to_string();
                let back: Vec<_> = parse(&text, &RULES).outcomes().map(|o| o.result).collect();
                if back != [Ok(e)] {
                    return Err(format!(
                        "{:?} formats as {:?} which parses as {:?}",
                        e, text, back
                    ));
                }
                accepted.push(e);
            }
            Err(Reject::Overlap(j)) => {
                let earlier = outcomes.get(j).and_then(|o| o.result.ok());
                if j >= i || earlier.is_none() {
                    return Err(format!(
                        "entry {} overlaps {} which is not an earlier accepted entry",
                        i, j
                    ));
                }
            }
            Err(Reject::TooMany) => return Err(format!("TooMany as an outcome at {}", i)),
            Err(_) => {}
        }
        // The reference, for entries written cleanly.
        if let Some(Planned {
            expect: Some(want), ..
        }) = plan.and_then(|pl| pl.get(i))
        {
            let ok = match (o.result, *want) {
                (Err(Reject::Overlap(_)), Ok(w)) => w.phys.is_some(),
                (got, w) => got == w,
            };
            if !ok {
                return Err(format!(
                    "entry {} {:?}: got {:?}, want {:?}",
                    i, pieces[i], o.result, want
                ));
            }
        }
    }
    // The accepted list formatted back parses to the same list.
    let formatted = accepted
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let again: Vec<Entry> = parse(&formatted, &RULES).accepted().collect();
    if again != accepted {
        return Err(format!("list round trip: {:?} -> {:?}", accepted, again));
    }
    Ok(())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn generated_strings_keep_every_promise() {
    let cases = env_u64("PARAM_FUZZ_CASES", 200_000);
    let seed = env_u64("PARAM_FUZZ_SEED", 0x6578_746d_656d);
    println!(
        "param_fuzz: {} cases, seed {} (PARAM_FUZZ_SEED replays)",
        cases, seed
    );
    let mut rng = Rng(seed);
    let (mut accepted, mut rejected, mut clean) = (0u64, 0u64, 0u64);
    for case in 0..cases {
        let (s, plan) = generate(&mut rng);
        if let Err(e) = check(&s, Some(&plan)) {
            panic!("case {} (seed {}): {:?}: {}", case, seed, s, e);
        }
        let p = parse(&s, &RULES);
        accepted += p.accepted().count() as u64;
        rejected += p.outcomes().filter(|o| o.result.is_err()).count() as u64;
        clean += plan.iter().filter(|p| p.expect.is_some()).count() as u64;
    }
    println!(
        "param_fuzz: {} entries accepted, {} rejected, {} checked against the reference",
        accepted, rejected, clean
    );
    assert!(accepted > cases / 4 && rejected > cases / 4);
}

#[test]
fn random_bytes_never_panic() {
    let cases = env_u64("PARAM_FUZZ_CASES", 200_000) / 4;
    let mut rng = Rng(env_u64("PARAM_FUZZ_SEED", 0x6578_746d_656d) ^ 0xff);
    let alphabet = b"0123456789xXkKmMgGtT:@,";
    for case in 0..cases {
        let len = rng.below(300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.chance(80) {
                    *rng.pick(alphabet)
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        let s = String::from_utf8_lossy(&bytes);
        if let Err(e) = check(&s, None) {
            panic!("case {}: {:?}: {}", case, s, e);
        }
    }
}

/// The strings of the VM boot in `scripts/vm-suites-reliability.sh` (the part that goes
/// through the parser), with the outcomes the boot expects.
#[test]
fn the_nasty_boot_strings() {
    let s = concat!(
        "0:128M,",                     // 0 accepted
        "0:0x8000000@0x48000000,",     // 1 accepted, fixed
        "1:18446744073709551616,",     // 2 overflow
        "1:16777216T,",                // 3 overflow after the suffix
        "0:128M@0xfffffffff8000000,",  // 4 phys + size = 2^64: overflow
        "64:128M,",                    // 5 node out of range
        "4294967296:128M,",            // 6 node does not fit u32
        ",,",                          // 7 and 8 empty
        "0:128M@0x48000000,",          // 9 overlaps 1
        "1:128MiB,",                   // 10 trailing garbage
        "1:0x0,",                      // 11 zero
        "1:134217729,",                // 12 unaligned
        "1:00000000000000000000128m,", // 13 accepted: leading zeros are decimal
        "1:128M@,",                    // 14 no address
        "1:1G@0x1",                    // 15 address unaligned
    );
    let p = parse(s, &RULES);
    let got: Vec<_> = p.outcomes().map(|o| o.result).collect();
    let m = 128 * MIB;
    assert_eq!(
        got,
        vec![
            Ok(Entry {
                node: 0,
                size: m,
                phys: None
            }),
            Ok(Entry {
                node: 0,
                size: m,
                phys: Some(0x4800_0000)
            }),
            Err(Reject::Overflow),
            Err(Reject::Overflow),
            Err(Reject::Overflow),
            Err(Reject::NodeOutOfRange),
            Err(Reject::NodeOutOfRange),
            Err(Reject::Empty),
            Err(Reject::Empty),
            Err(Reject::Overlap(1)),
            Err(Reject::TrailingGarbage),
            Err(Reject::ZeroSize),
            Err(Reject::SizeUnaligned),
            Ok(Entry {
                node: 1,
                size: m,
                phys: None
            }),
            Err(Reject::BadPhys),
            Err(Reject::PhysUnaligned),
        ]
    );
    assert_eq!(Bytes(m).to_string(), "128M");
}
