//! The weights in the page: loading and verifying the file, and uploading it in the precision
//! `configure({precision})` asks for.

use super::*;

#[wasm_bindgen]
impl StyleTransfer {
    /// `await st.loadWeights(bytes)`: a weights file (quantised or float32), verified (magic,
    /// version, shapes, checksum) and uploaded to the GPU. Resolves to {layers, dtype}.
    #[wasm_bindgen(js_name = loadWeights)]
    pub fn load_weights(&self, bytes: Uint8Array) -> Promise {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        future_to_promise(async move {
            inner.check_usable()?;
            let digest = crate::weights::file_sha256(&bytes);
            if digest != crate::weights::COMMITTED_WEIGHTS_SHA256 {
                return Err(js_error(format!(
                    "the weights file is not the one this engine was built with (sha256 {digest}, expected {}): \
                     it was replaced or damaged; serve the project's weights/vgg19.q8.bin",
                    crate::weights::COMMITTED_WEIGHTS_SHA256
                )));
            }
            let weights = Weights::from_bytes(&bytes).map_err(|e| js_error(format!("the weights file is unusable: {e}")))?;
            let net = upload(&inner, &weights, inner.precision.get())?;
            let available = Array::new();
            for conv in &CONVS[..net.convs.len()] {
                available.push(&JsValue::from_str(conv.relu));
            }
            let bytes_len = bytes.len();
            {
                let mut inputs = inner.inputs.borrow_mut();
                inputs.net = Some(Rc::new(net));
                let another_precision = Precision::F16.check(&inner.ctx).is_ok();
                inputs.weights_file = another_precision.then(|| Rc::new(bytes));
            }
            inner.changed();
            let dtype = match weights.dtype {
                crate::weights::WeightsDtype::Q8 => "q8",
                crate::weights::WeightsDtype::F32 => "f32",
            };
            Ok(object(&[
                ("layers", JsValue::from(weights.layers.len() as u32)),
                ("dtype", JsValue::from_str(dtype)),
                ("bytes", JsValue::from(bytes_len as f64)),
                ("availableLayers", available.into()),
            ]))
        })
    }

    /// How the conv weights are stored: `"f32"` or `"f16"` (`configure({precision})`).
    pub fn precision(&self) -> String {
        self.inner.precision.get().name().to_string()
    }

    /// The precisions this GPU runs: `["f32"]`, and `"f16"` where it has shader-f16.
    pub fn precisions(&self) -> Array {
        Precision::ALL.into_iter().filter(|p| p.check(&self.inner.ctx).is_ok()).map(|p| JsValue::from_str(p.name())).collect()
    }
}

impl Inner {
    /// `configure({precision})`: checked against this GPU first; loaded weights are uploaded again in
    /// the new precision (from the kept file) and the run starts over. On an error nothing changes.
    pub(super) fn set_precision(&self, precision: Precision) -> Result<(), JsValue> {
        precision.check(&self.ctx).map_err(|e| js_error(format!("precision: {e}")))?;
        let (net, file) = {
            let inputs = self.inputs.borrow();
            (inputs.net.clone(), inputs.weights_file.clone())
        };
        if let (Some(net), Some(file)) = (net, file) {
            if net.precision() != precision {
                let weights = Weights::from_bytes(&file).map_err(|e| js_error(format!("the weights file is unusable: {e}")))?;
                let uploaded = upload(self, &weights, precision)?;
                // The old network's buffers go with the run that used them.
                *self.run.borrow_mut() = None;
                *self.scales.borrow_mut() = None;
                self.inputs.borrow_mut().net = Some(Rc::new(uploaded));
            }
        }
        self.precision.set(precision);
        Ok(())
    }
}

/// The weights uploaded in `precision`, with the page's wording of each failure.
fn upload(inner: &Inner, weights: &Weights, precision: Precision) -> Result<Network, JsValue> {
    precision.check(&inner.ctx).map_err(|e| js_error(format!("precision: {e}")))?;
    let net = Network::upload_in(&inner.ctx, weights, precision).map_err(|e| js_error(format!("the weights file does not fit VGG19: {e}")))?;
    if let Some(e) = inner.ctx.take_error() {
        return Err(js_error(format!("uploading the weights to the GPU failed: {e}")));
    }
    Ok(net)
}
