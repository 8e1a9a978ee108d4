// SPDX-License-Identifier: GPL-2.0

//! Sizes as operators write and read them: `512M`, `2G`, `1.5 GiB`.

/// Parses a size with a binary unit: `K`, `M`, `G` or `T`, optionally followed by `iB` or
/// `B` (`4K`, `512M`, `2GiB`, `1T`). A plain number is refused: a size without a unit is
/// almost always a mistake (bytes? MiB?).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        return Err(format!(
            "size '{s}' does not start with a number (write e.g. 512M or 2G)"
        ));
    }
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" => {
            return Err(format!(
                "size '{s}' has no unit: write K, M, G or T (e.g. {s}M or {s}G)"
            ))
        }
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "size '{s}': unknown unit '{}' (K, M, G or T)",
                unit.trim()
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size '{s}' is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Formats a byte count for people: the largest binary unit that keeps at least 1, with up
/// to two decimals when the count is not a whole number of it (`512 MiB`, `1.5 GiB`).
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit {
            if bytes.is_multiple_of(unit) {
                return format!("{} {name}", bytes >> shift);
            }
            let hundredths = (u128::from(bytes) * 100 / u128::from(unit)) as u64;
            let s = format!("{}.{:02}", hundredths / 100, hundredths % 100);
            let s = s.trim_end_matches('0').trim_end_matches('.');
            return format!("{s} {name}");
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1 t"), Ok(1 << 40));
        assert!(parse_size("1024").unwrap_err().contains("no unit"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("99999999999999999999999M")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("G").is_err());
        assert!(parse_size("1X").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(512 << 20), "512 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human((1 << 30) + (1 << 20)), "1 GiB");
    }
}
