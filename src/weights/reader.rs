//! Reading a weights file: every number is checked before it is used (see the module docs of
//! [`crate::weights`]).

use super::*;

/// One row of the tensor table, checked against the payload.
struct Entry {
    name: String,
    dtype: u32,
    shape: Vec<usize>,
    /// Byte range in the payload.
    start: usize,
    end: usize,
}

/// Fixed-size fields of the preamble.
struct Preamble {
    tensor_count: usize,
    header_len: usize,
    payload_len: usize,
}

fn parse_preamble(bytes: &[u8]) -> Result<Preamble, WeightsError> {
    use WeightsErrorKind::*;
    if bytes.len() < MAGIC.len() {
        if bytes == &MAGIC[..bytes.len()] {
            return Err(err(
                Truncated,
                format!(
                    "weights file is truncated: only {} bytes, not even a header; {REBUILD_HINT}",
                    bytes.len()
                ),
            ));
        }
        return Err(bad_magic(bytes));
    }
    if bytes[..8] != MAGIC {
        return Err(bad_magic(bytes));
    }
    if bytes.len() < PREAMBLE_LEN {
        return Err(err(
            Truncated,
            format!(
                "weights file is truncated: {} bytes, shorter than the {PREAMBLE_LEN}-byte preamble; {REBUILD_HINT}",
                bytes.len()
            ),
        ));
    }
    let (Some(version), Some(count), Some(header_len), Some(reserved), Some(payload_len)) = (
        read_u32(bytes, 8),
        read_u32(bytes, 12),
        read_u32(bytes, 16),
        read_u32(bytes, 20),
        read_u64(bytes, 24),
    ) else {
        return Err(err(
            Truncated,
            format!("weights file is truncated inside its preamble; {REBUILD_HINT}"),
        ));
    };
    if version != FORMAT_VERSION {
        return Err(err(
            UnsupportedVersion,
            format!(
                "unsupported weights file version {version}: this build reads version {FORMAT_VERSION} only; \
                 use the weights file that ships with this version of stylize or {REBUILD_HINT}"
            ),
        ));
    }
    let count = count as usize;
    if count == 0 || count > MAX_TENSORS {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: absurd tensor count {count} (a VGG19 file has 1 to {MAX_TENSORS}); {REBUILD_HINT}"
            ),
        ));
    }
    let expected_header = PREAMBLE_LEN + count * ENTRY_LEN + TRAILER_LEN;
    if header_len as usize != expected_header {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: header length {header_len} does not match {count} tensors \
                 (expected {expected_header}); {REBUILD_HINT}"
            ),
        ));
    }
    if reserved != 0 {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: reserved preamble field is {reserved}, not 0; {REBUILD_HINT}"),
        ));
    }
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: absurd payload length {payload_len} bytes (limit {MAX_PAYLOAD_BYTES}); {REBUILD_HINT}"
            ),
        ));
    }
    Ok(Preamble {
        tensor_count: count,
        header_len: expected_header,
        payload_len: payload_len as usize,
    })
}

fn bad_magic(bytes: &[u8]) -> WeightsError {
    let shown = hex(&bytes[..bytes.len().min(8)]);
    let json_hint = if bytes.first() == Some(&b'{') {
        " (it looks like JSON: pass the source directory itself, not its manifest.json)"
    } else {
        ""
    };
    err(
        WeightsErrorKind::BadMagic,
        format!(
            "not a stylize weights file: wrong magic number {shown:?} (expected {:?}){json_hint}; pass {DEFAULT_WEIGHTS_FILE}, \
             a file written by `stylize convert-weights`, or a float32 source directory",
            String::from_utf8_lossy(&MAGIC)
        ),
    )
}

fn parse_name(field: &[u8], index: usize) -> Result<String, WeightsError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, pad) = field.split_at(end);
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) || pad.iter().any(|&b| b != 0) {
        return Err(err(
            WeightsErrorKind::Malformed,
            format!(
                "weights file is corrupt: tensor {index} has an invalid name (bytes {}); {REBUILD_HINT}",
                hex(field)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn parse_entries(bytes: &[u8], pre: &Preamble) -> Result<Vec<Entry>, WeightsError> {
    use WeightsErrorKind::*;
    let payload = &bytes[pre.header_len..pre.header_len + pre.payload_len];
    let mut entries = Vec::with_capacity(pre.tensor_count);
    let mut expected_start = 0u64;
    for i in 0..pre.tensor_count {
        let at = PREAMBLE_LEN + i * ENTRY_LEN;
        let field = &bytes[at..at + ENTRY_LEN];
        let name = parse_name(&field[..NAME_LEN], i)?;
        let corrupt = |what: String| {
            err(
                Malformed,
                format!("weights file is corrupt: tensor {name}: {what}; {REBUILD_HINT}"),
            )
        };
        // The slice is ENTRY_LEN long, so these reads cannot fail; map to an error anyway.
        let rd32 = |o: usize| read_u32(field, o).ok_or_else(|| corrupt("entry cut short".into()));
        let dtype = rd32(32)?;
        let rank = rd32(36)? as usize;
        let dims = [rd32(40)?, rd32(44)?, rd32(48)?, rd32(52)?];
        let offset = read_u64(field, 56).ok_or_else(|| corrupt("entry cut short".into()))?;
        let len = read_u64(field, 64).ok_or_else(|| corrupt("entry cut short".into()))?;
        let elem = match dtype {
            DTYPE_CODE_F32 => 4u64,
            DTYPE_CODE_I8 => 1u64,
            other => return Err(corrupt(format!("unknown dtype code {other} (1 = f32, 2 = i8)"))),
        };
        if !(1..=4).contains(&rank) {
            return Err(corrupt(format!("absurd rank {rank} (1 to 4)")));
        }
        if dims[..rank].contains(&0) || dims[rank..].iter().any(|&d| d != 0) {
            return Err(corrupt(format!("invalid shape {:?} for rank {rank}", dims)));
        }
        let shape: Vec<usize> = dims[..rank].iter().map(|&d| d as usize).collect();
        let elems = dims[..rank].iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let want_len = elems.and_then(|n| n.checked_mul(elem));
        if want_len != Some(len) {
            return Err(corrupt(format!("byte length {len} does not match its shape {shape:?}")));
        }
        if offset != expected_start {
            return Err(corrupt(format!(
                "offset {offset} is out of place (tensors are packed in table order; expected {expected_start})"
            )));
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= pre.payload_len as u64)
            .ok_or_else(|| {
                corrupt(format!(
                    "offsets out of range: bytes {offset}..{offset}+{len} lie beyond the {}-byte payload",
                    pre.payload_len
                ))
            })?;
        let next = align4(end).ok_or_else(|| corrupt("offset overflow".into()))?;
        let pad_end = next.min(pre.payload_len as u64) as usize;
        if payload[end as usize..pad_end].iter().any(|&b| b != 0) {
            return Err(corrupt("non-zero alignment padding after the tensor".into()));
        }
        entries.push(Entry {
            name,
            dtype,
            shape,
            start: offset as usize,
            end: end as usize,
        });
        expected_start = next;
    }
    let last_end = entries.last().map_or(0, |e| e.end);
    if last_end != pre.payload_len {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: the tensors end at byte {last_end} of a {}-byte payload; {REBUILD_HINT}",
                pre.payload_len
            ),
        ));
    }
    Ok(entries)
}

fn parse_input(field: &[u8]) -> Result<InputConvention, WeightsError> {
    use WeightsErrorKind::*;
    let order = match &field[..4] {
        b"BGR\0" => "BGR",
        b"RGB\0" => "RGB",
        other => {
            return Err(err(
                Malformed,
                format!(
                    "weights file is corrupt: input channel order bytes {} are neither BGR nor RGB; {REBUILD_HINT}",
                    hex(other)
                ),
            ))
        }
    };
    let f = |o: usize| read_f32(field, o).unwrap_or(f32::NAN);
    let scale = f(4);
    let mean = [f(8), f(12), f(16)];
    if !scale.is_finite() || mean.iter().any(|m| !m.is_finite()) {
        return Err(err(
            NonFinite,
            format!(
                "weights file has a NaN or infinite input convention (scale {scale}, mean {mean:?}); {REBUILD_HINT}"
            ),
        ));
    }
    if scale <= 0.0 {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: input scale {scale} is not positive; {REBUILD_HINT}"),
        ));
    }
    if field[20..INPUT_LEN].iter().any(|&b| b != 0) {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: reserved input-convention bytes are not zero; {REBUILD_HINT}"),
        ));
    }
    Ok(InputConvention {
        channel_order: order.to_string(),
        scale,
        mean,
    })
}

impl Weights {
    /// Parses a weights file (q8 or f32) and validates all of it: magic, version, counts,
    /// checksums, offsets, names, shapes against VGG19, and finiteness of every value.
    /// Never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Weights, WeightsError> {
        use WeightsErrorKind::*;
        let pre = parse_preamble(bytes)?;
        let total = pre.header_len + pre.payload_len;
        if bytes.len() < total {
            return Err(err(
                Truncated,
                format!(
                    "weights file is truncated: {} bytes, but its header announces {total}; the copy or download was cut short; {REBUILD_HINT}",
                    bytes.len()
                ),
            ));
        }
        if bytes.len() > total {
            return Err(err(
                Malformed,
                format!(
                    "weights file is corrupt: {} trailing bytes after the {total} its header announces; {REBUILD_HINT}",
                    bytes.len() - total
                ),
            ));
        }
        // Both checksums before any offset is used: the header one guards the table.
        let header_digest_at = pre.header_len - DIGEST_LEN;
        let payload_digest_at = header_digest_at - DIGEST_LEN;
        let header_hash = sha256(&[&bytes[..header_digest_at]]);
        if header_hash[..] != bytes[header_digest_at..pre.header_len] {
            return Err(err(
                Checksum,
                format!(
                    "bad checksum: the weights file header's sha256 is {} but the file records {}; the header is corrupted; {REBUILD_HINT}",
                    hex(&header_hash),
                    hex(&bytes[header_digest_at..pre.header_len])
                ),
            ));
        }
        let payload = &bytes[pre.header_len..total];
        let payload_hash = sha256(&[payload]);
        if payload_hash[..] != bytes[payload_digest_at..header_digest_at] {
            return Err(err(
                Checksum,
                format!(
                    "bad checksum: the weights payload's sha256 is {} but the header records {}; the file is corrupted; {REBUILD_HINT}",
                    hex(&payload_hash),
                    hex(&bytes[payload_digest_at..header_digest_at])
                ),
            ));
        }
        let entries = parse_entries(bytes, &pre)?;
        let input_at = PREAMBLE_LEN + pre.tensor_count * ENTRY_LEN;
        let input = parse_input(&bytes[input_at..input_at + INPUT_LEN])?;

        let mut layers: Vec<ConvWeights> = Vec::new();
        let mut file_dtype: Option<WeightsDtype> = None;
        let mut next = 0usize;
        while next < entries.len() {
            let index = layers.len();
            let kernel_entry = &entries[next];
            let Some(layer_name) = kernel_entry.name.strip_suffix(".kernel") else {
                return Err(err(
                    Malformed,
                    format!(
                        "weights file is corrupt: expected a `<layer>.kernel` tensor at position {next}, found {:?}; {REBUILD_HINT}",
                        kernel_entry.name
                    ),
                ));
            };
            if index >= VGG19_CONVS.len() {
                return Err(err(
                    Malformed,
                    format!("weights file has a 17th layer {layer_name:?}; VGG19 has 16 convolutions; {REBUILD_HINT}"),
                ));
            }
            if layer_name != VGG19_CONVS[index].conv {
                if VGG19_CONVS.iter().any(|c| c.conv == layer_name) {
                    return Err(missing_layer(index, Some(layer_name), index));
                }
                return Err(err(
                    Malformed,
                    format!(
                        "weights file has an unknown layer {layer_name:?} where {} was expected; {REBUILD_HINT}",
                        VGG19_CONVS[index].conv
                    ),
                ));
            }
            let dtype = match kernel_entry.dtype {
                DTYPE_CODE_I8 => WeightsDtype::Q8,
                _ => WeightsDtype::F32,
            };
            if *file_dtype.get_or_insert(dtype) != dtype {
                return Err(err(
                    Malformed,
                    format!("weights file mixes kernel dtypes: {layer_name} is {dtype} but earlier layers are not; {REBUILD_HINT}"),
                ));
            }
            let [cout, kh, kw, cin] = kernel_entry.shape[..] else {
                return Err(err(
                    ShapeMismatch,
                    format!(
                        "shape mismatch: {layer_name}.kernel has shape {:?}, expected [cout, 3, 3, cin]; {REBUILD_HINT}",
                        kernel_entry.shape
                    ),
                ));
            };
            if kh != 3 || kw != 3 {
                return Err(err(
                    ShapeMismatch,
                    format!("shape mismatch: {layer_name}.kernel is {kh}x{kw}, VGG19 uses 3x3 kernels; {REBUILD_HINT}"),
                ));
            }
            check_layer_shape(index, layer_name, cin, cout, layers.last().map(|l| l.cout))?;

            // The tensors that follow the kernel, in order: [kernel_scale (q8 only)], bias.
            let mut take = |suffix: &str| -> Result<&[u8], WeightsError> {
                let want = format!("{layer_name}.{suffix}");
                let Some(e) = entries.get(next + 1).filter(|e| e.name == want) else {
                    return Err(err(
                        Malformed,
                        format!(
                            "weights file is corrupt: tensor {want} must follow {layer_name}.kernel{}; {REBUILD_HINT}",
                            if suffix == "bias" && dtype == WeightsDtype::Q8 {
                                ".kernel_scale"
                            } else {
                                ""
                            }
                        ),
                    ));
                };
                if e.dtype != DTYPE_CODE_F32 || e.shape != [cout] {
                    return Err(err(
                        ShapeMismatch,
                        format!(
                            "shape mismatch: {want} must be f32 of shape [{cout}], found shape {:?}; {REBUILD_HINT}",
                            e.shape
                        ),
                    ));
                }
                next += 1;
                Ok(&payload[e.start..e.end])
            };
            let scales = match dtype {
                WeightsDtype::Q8 => Some(f32s_from_le(take("kernel_scale")?)),
                WeightsDtype::F32 => None,
            };
            let bias = f32s_from_le(take("bias")?);
            next += 1;

            let raw = &payload[kernel_entry.start..kernel_entry.end];
            let kernel = match &scales {
                None => f32s_from_le(raw),
                Some(scales) => {
                    if let Some((i, v)) = first_non_finite(scales) {
                        return Err(non_finite(layer_name, "kernel_scale", i, v));
                    }
                    if let Some(i) = scales.iter().position(|&s| s < 0.0) {
                        return Err(err(
                            Malformed,
                            format!(
                                "weights file is corrupt: {layer_name}.kernel_scale[{i}] is negative; {REBUILD_HINT}"
                            ),
                        ));
                    }
                    if let Some(i) = raw.iter().position(|&b| b as i8 == i8::MIN) {
                        return Err(err(
                            Malformed,
                            format!(
                                "weights file is corrupt: {layer_name}.kernel element {i} is -128, outside the symmetric range [-127, 127]; {REBUILD_HINT}"
                            ),
                        ));
                    }
                    let per = 9 * cin;
                    raw.iter()
                        .enumerate()
                        .map(|(i, &q)| q as i8 as f32 * scales[i / per])
                        .collect()
                }
            };
            if let Some((i, v)) = first_non_finite(&kernel) {
                return Err(non_finite(layer_name, "kernel", i, v));
            }
            if let Some((i, v)) = first_non_finite(&bias) {
                return Err(non_finite(layer_name, "bias", i, v));
            }
            layers.push(ConvWeights {
                name: layer_name.to_string(),
                cin,
                cout,
                kernel,
                bias,
            });
        }
        complete(layers, input, file_dtype.unwrap_or(WeightsDtype::F32))
    }
}
