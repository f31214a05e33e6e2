//! Writing a weights file, and the converter from the float32 source directory.

use super::*;

/// Per-output-channel symmetric 8-bit quantisation of a `[cout][ky][kx][cin]` kernel.
/// Returns (q, scales): w ≈ q·scale, |w − q·scale| ≤ scale/2. An all-zero channel gets scale 0.
pub fn quantize_kernel(kernel: &[f32], cout: usize) -> (Vec<i8>, Vec<f32>) {
    let per = kernel.len().checked_div(cout).unwrap_or(0);
    let mut q = Vec::with_capacity(kernel.len());
    let mut scales = Vec::with_capacity(cout);
    for co in 0..cout {
        let channel = &kernel[co * per..(co + 1) * per];
        let scale = max_abs(channel) / 127.0;
        scales.push(scale);
        for &w in channel {
            // `as i8` saturates and maps NaN to 0; the NaN/Inf scale still reaches the file.
            let v = if scale > 0.0 && scale.is_finite() {
                (w / scale).round().clamp(-127.0, 127.0)
            } else {
                0.0
            };
            q.push(v as i8);
        }
    }
    // A kernel whose length is not a multiple of cout keeps its tail as zeros, so that the
    // loader reports the length mismatch instead of this function panicking.
    q.resize(kernel.len(), 0);
    (q, scales)
}

impl Weights {
    /// Serialises to the weights file format, quantising kernels for [`WeightsDtype::Q8`].
    /// Values are written as they are (a NaN stays a NaN, or makes its channel's scale NaN),
    /// so [`Weights::from_bytes`] is the single place that judges validity. The output depends
    /// only on the weights: converting the same source twice gives identical bytes.
    pub fn to_bytes(&self, dtype: WeightsDtype) -> Vec<u8> {
        struct Out {
            name: String,
            dtype: u32,
            shape: Vec<u32>,
            data: Vec<u8>,
        }
        let dim = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut tensors = Vec::new();
        for l in &self.layers {
            let kernel_shape = vec![dim(l.cout), 3, 3, dim(l.cin)];
            match dtype {
                WeightsDtype::F32 => tensors.push(Out {
                    name: format!("{}.kernel", l.name),
                    dtype: DTYPE_CODE_F32,
                    shape: kernel_shape,
                    data: f32_bytes(&l.kernel),
                }),
                WeightsDtype::Q8 => {
                    let (q, scales) = quantize_kernel(&l.kernel, l.cout);
                    tensors.push(Out {
                        name: format!("{}.kernel", l.name),
                        dtype: DTYPE_CODE_I8,
                        shape: kernel_shape,
                        data: q.iter().map(|&v| v as u8).collect(),
                    });
                    tensors.push(Out {
                        name: format!("{}.kernel_scale", l.name),
                        dtype: DTYPE_CODE_F32,
                        shape: vec![dim(l.cout)],
                        data: f32_bytes(&scales),
                    });
                }
            }
            tensors.push(Out {
                name: format!("{}.bias", l.name),
                dtype: DTYPE_CODE_F32,
                shape: vec![dim(l.bias.len())],
                data: f32_bytes(&l.bias),
            });
        }

        let mut payload = Vec::new();
        let mut table = Vec::with_capacity(tensors.len() * ENTRY_LEN);
        for t in &tensors {
            while payload.len() % 4 != 0 {
                payload.push(0);
            }
            let mut name = [0u8; NAME_LEN];
            let n = t.name.len().min(NAME_LEN);
            name[..n].copy_from_slice(&t.name.as_bytes()[..n]);
            table.extend_from_slice(&name);
            table.extend_from_slice(&t.dtype.to_le_bytes());
            table.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for i in 0..4 {
                table.extend_from_slice(&t.shape.get(i).copied().unwrap_or(0).to_le_bytes());
            }
            table.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            table.extend_from_slice(&(t.data.len() as u64).to_le_bytes());
            payload.extend_from_slice(&t.data);
        }

        let header_len = PREAMBLE_LEN + table.len() + TRAILER_LEN;
        let mut out = Vec::with_capacity(header_len + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&table);
        let mut order = [0u8; 4];
        let n = self.input.channel_order.len().min(3);
        order[..n].copy_from_slice(&self.input.channel_order.as_bytes()[..n]);
        out.extend_from_slice(&order);
        out.extend_from_slice(&self.input.scale.to_le_bytes());
        for m in self.input.mean {
            out.extend_from_slice(&m.to_le_bytes());
        }
        out.extend_from_slice(&[0u8; 12]);
        out.extend_from_slice(&sha256(&[&payload]));
        let header_hash = sha256(&[&out]);
        out.extend_from_slice(&header_hash);
        debug_assert_eq!(out.len(), header_len);
        out.extend_from_slice(&payload);
        out
    }
}

/// Per-layer quantisation error of the kernels, measured by the converter against the source.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    /// max |w − w'| over the kernel.
    pub kernel_max_abs_error: f32,
    /// ‖w − w'‖₂ / ‖w‖₂ over the kernel (0 for f32 files).
    pub kernel_rel_rms_error: f64,
}

/// What [`convert`] wrote.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    pub out: PathBuf,
    pub dtype: WeightsDtype,
    pub layers: Vec<LayerReport>,
    pub file_bytes: u64,
    /// sha256 of the whole written file, lower-case hex.
    pub sha256: String,
}

#[cfg(not(target_arch = "wasm32"))]
impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} ({} bytes, {} kernels, {} layers)",
            self.out.display(),
            self.file_bytes,
            self.dtype,
            self.layers.len()
        )?;
        writeln!(f, "sha256 {}", self.sha256)?;
        for l in &self.layers {
            writeln!(
                f,
                "  {:8} {:>3} -> {:<3}  kernel max |err| {:.3e}  rel L2 err {:.3e}",
                l.name, l.cin, l.cout, l.kernel_max_abs_error, l.kernel_rel_rms_error
            )?;
        }
        Ok(())
    }
}

/// Converts the float32 source directory into a weights file holding conv1_1..conv5_1
/// (the committed layer set). See [`convert_layers`] for all 16.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert(src: &Path, out: &Path, dtype: WeightsDtype) -> Result<ConvertReport, WeightsError> {
    convert_layers(src, out, dtype, REQUIRED_LAYERS)
}

/// Like [`convert`], keeping the first `layer_count` convolutions (13 = up to conv5_1, 16 = all).
/// The written bytes are re-parsed before they are saved, and the file is written atomically
/// (temporary file + rename) so a failed run never leaves a half-written weights file.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert_layers(
    src: &Path,
    out: &Path,
    dtype: WeightsDtype,
    layer_count: usize,
) -> Result<ConvertReport, WeightsError> {
    if !(REQUIRED_LAYERS..=VGG19_CONVS.len()).contains(&layer_count) {
        return Err(err(
            WeightsErrorKind::InvalidArgument,
            format!(
                "cannot convert {layer_count} layers: choose {REQUIRED_LAYERS} (conv1_1..conv5_1, the default) to {} (all of VGG19)",
                VGG19_CONVS.len()
            ),
        ));
    }
    let mut source = Weights::from_source_dir(src)?;
    if source.layers.len() < layer_count {
        return Err(missing_layer(source.layers.len(), None, source.layers.len()).in_path(src));
    }
    source.layers.truncate(layer_count);
    let bytes = source.to_bytes(dtype);
    let written = Weights::from_bytes(&bytes)?;
    let layers = source
        .layers
        .iter()
        .zip(&written.layers)
        .map(|(a, b)| {
            let mut max_abs_error = 0.0f32;
            let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
            for (&x, &y) in a.kernel.iter().zip(&b.kernel) {
                max_abs_error = max_abs_error.max((x - y).abs());
                diff2 += ((x - y) as f64).powi(2);
                norm2 += (x as f64).powi(2);
            }
            LayerReport {
                name: a.name.clone(),
                cin: a.cin,
                cout: a.cout,
                kernel_max_abs_error: max_abs_error,
                kernel_rel_rms_error: if norm2 > 0.0 { (diff2 / norm2).sqrt() } else { 0.0 },
            }
        })
        .collect();

    let io = |what: &str, path: &Path, e: std::io::Error| {
        err(
            WeightsErrorKind::Io,
            format!(
                "{}: cannot {what} ({e}); check that the folder exists and is writable",
                path.display()
            ),
        )
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io("create the output folder", parent, e))?;
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|e| io("write the weights file", &tmp, e))?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("move the weights file into place", out, e)
    })?;
    Ok(ConvertReport {
        out: out.to_path_buf(),
        dtype,
        layers,
        file_bytes: bytes.len() as u64,
        sha256: hex(&sha256(&[&bytes])),
    })
}
