//! Full-size tensors in row bands. At 4096 px the image, its gradient and the optimiser's moments are
//! 192 MiB each and the relu4_2 content target 512 MiB: over WebGPU's 128 MiB per binding. A tiled
//! run keeps each of them as bands of whole rows, every band a buffer of its own (rows of an HWC map
//! are contiguous, so a band is one range of the tensor). Elementwise kernels run once per band,
//! window copies once per band they overlap; untiled runs have one band.

use crate::gpu::{Dispatch, GpuContext, GpuError};
use crate::kernels::window::{At, Rect, WindowCopy};
use crate::plan::BufferSpec;

/// A tensor of `rows` rows of `row_len` f32 each, split into bands of at most `rows_per_band` rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BandsLayout {
    pub label: String,
    pub rows: usize,
    pub row_len: usize,
    pub rows_per_band: usize,
    /// One buffer per band ("x", or "x rows 0..1365" when there are several).
    specs: Vec<BufferSpec>,
}

impl BandsLayout {
    fn new(label: String, rows: usize, row_len: usize, rows_per_band: usize) -> BandsLayout {
        let mut layout = BandsLayout { label, rows, row_len, rows_per_band, specs: Vec::new() };
        let ranges = layout.ranges();
        let several = ranges.len() > 1;
        layout.specs = ranges
            .into_iter()
            .map(|(r, n)| {
                let label = if several { format!("{} rows {r}..{}", layout.label, r + n) } else { layout.label.clone() };
                BufferSpec::new(label, (n * row_len) as u64 * 4)
            })
            .collect();
        layout
    }

    /// One band holding everything (what untiled runs use).
    pub fn single(label: impl Into<String>, rows: usize, row_len: usize) -> BandsLayout {
        BandsLayout::new(label.into(), rows, row_len, rows.max(1))
    }

    /// Bands of as many rows as fit in `max_bytes` (at least one row each).
    pub fn banded(label: impl Into<String>, rows: usize, row_len: usize, max_bytes: u64) -> BandsLayout {
        let per_band = (max_bytes / (row_len.max(1) as u64 * 4)).max(1) as usize;
        BandsLayout::new(label.into(), rows, row_len, per_band.min(rows.max(1)))
    }

    /// The same bands for another tensor of this shape (the optimiser's moments follow x).
    pub fn like(&self, label: impl Into<String>) -> BandsLayout {
        BandsLayout::new(label.into(), self.rows, self.row_len, self.rows_per_band)
    }

    /// (first row, rows) of each band.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let rows = self.rows.max(1);
        (0..rows).step_by(self.rows_per_band).map(|r| (r, self.rows_per_band.min(rows - r))).collect()
    }

    pub fn len(&self) -> usize {
        self.rows * self.row_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn specs(&self) -> &[BufferSpec] {
        &self.specs
    }

    pub fn bytes(&self) -> u64 {
        self.specs.iter().map(|s| s.bytes).sum()
    }
}

/// One band: its first row, its rows, its buffer.
pub struct Band<'a> {
    pub row0: usize,
    pub rows: usize,
    pub buffer: &'a wgpu::Buffer,
}

impl Band<'_> {
    /// f32 values in this band.
    pub fn len(&self, row_len: usize) -> usize {
        self.rows * row_len
    }
}

/// The buffers of a [`BandsLayout`].
pub struct Bands {
    pub layout: BandsLayout,
    buffers: Vec<wgpu::Buffer>,
}

impl Bands {
    pub fn alloc(ctx: &GpuContext, layout: &BandsLayout) -> Bands {
        Bands { layout: layout.clone(), buffers: layout.specs().iter().map(|s| ctx.alloc(s)).collect() }
    }

    /// An existing buffer of `len` values as one band.
    pub fn from_buffer(label: &str, buffer: wgpu::Buffer, len: usize) -> Bands {
        Bands { layout: BandsLayout::single(label, 1, len), buffers: vec![buffer] }
    }

    pub fn iter(&self) -> impl Iterator<Item = Band<'_>> {
        self.layout.ranges().into_iter().zip(&self.buffers).map(|((row0, rows), buffer)| Band { row0, rows, buffer })
    }

    /// Each band of `self` with the same band of `other` (a tensor of the same layout).
    pub fn zip<'a>(&'a self, other: &'a Bands) -> impl Iterator<Item = (Band<'a>, Band<'a>)> {
        assert_eq!(self.layout.ranges(), other.layout.ranges(), "bands of {} and {} differ", self.layout.label, other.layout.label);
        self.iter().zip(other.iter())
    }

    pub fn band_count(&self) -> usize {
        self.buffers.len()
    }

    /// The one buffer of an untiled run's tensor.
    ///
    /// # Panics
    /// With several bands: plans give bands only to tiled runs, whose kernels go through them.
    pub fn single(&self) -> &wgpu::Buffer {
        assert_eq!(self.buffers.len(), 1, "{} is in {} bands: it needs the banded kernels", self.layout.label, self.buffers.len());
        &self.buffers[0]
    }

    /// One dispatch per band, from `f(band, values in it)`.
    pub fn per_band(&self, mut f: impl FnMut(&wgpu::Buffer, usize) -> Dispatch) -> Vec<Dispatch> {
        self.iter().map(|band| f(band.buffer, band.len(self.layout.row_len))).collect()
    }

    /// One dispatch per band of `self` and the same band of `other`, from `f(band, other's band,
    /// values in it)`.
    pub fn per_band_with(&self, other: &Bands, mut f: impl FnMut(&wgpu::Buffer, &wgpu::Buffer, usize) -> Dispatch) -> Vec<Dispatch> {
        self.zip(other).map(|(a, b)| f(a.buffer, b.buffer, a.len(self.layout.row_len))).collect()
    }

    /// Uploads the whole tensor (`data.len()` == the layout's length).
    pub fn write(&self, ctx: &GpuContext, data: &[f32]) {
        assert_eq!(data.len(), self.layout.len(), "{}: {} values for a tensor of {}", self.layout.label, data.len(), self.layout.len());
        for band in self.iter() {
            let start = band.row0 * self.layout.row_len;
            ctx.queue.write_buffer(band.buffer, 0, bytemuck::cast_slice(&data[start..start + band.len(self.layout.row_len)]));
        }
    }

    /// Reads the whole tensor back.
    pub async fn read(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        let mut out = Vec::with_capacity(self.layout.len());
        for band in self.iter() {
            out.extend(ctx.read_f32(band.buffer, 0, band.len(self.layout.row_len)).await?);
        }
        Ok(out)
    }

    /// Records copies of every band into the same band of `other`.
    pub fn copy_to(&self, encoder: &mut wgpu::CommandEncoder, other: &Bands) {
        for (a, b) in self.zip(other) {
            encoder.copy_buffer_to_buffer(a.buffer, 0, b.buffer, 0, (a.len(self.layout.row_len) * 4) as u64);
        }
    }

    /// Copies the window `rect` of this map (`channels` f32 per pixel, rows of `row_len / channels`
    /// pixels) into `dst` at `to`: one copy per band the window overlaps.
    pub fn copy_out(&self, ctx: &GpuContext, window: &WindowCopy, channels: usize, rect: Rect, dst: &wgpu::Buffer, to: At) -> Vec<Dispatch> {
        let width = self.layout.row_len / channels;
        self.overlaps(rect)
            .map(|(band, y0, rows)| {
                let from = At { width, y: y0 - band.row0, x: rect.x };
                window.copy(ctx, (rows, rect.w), channels, band.buffer, from, dst, At { y: to.y + (y0 - rect.y), ..to })
            })
            .collect()
    }

    /// Copies an `rect.h`×`rect.w` window of `src` at `from` into this map's window `rect`.
    pub fn copy_in(&self, ctx: &GpuContext, window: &WindowCopy, channels: usize, src: &wgpu::Buffer, from: At, rect: Rect) -> Vec<Dispatch> {
        let width = self.layout.row_len / channels;
        self.overlaps(rect)
            .map(|(band, y0, rows)| {
                let to = At { width, y: y0 - band.row0, x: rect.x };
                window.copy(ctx, (rows, rect.w), channels, src, At { y: from.y + (y0 - rect.y), ..from }, band.buffer, to)
            })
            .collect()
    }

    /// The bands that rows `rect.y .. rect.y + rect.h` cross: (band, first row, rows) of each overlap.
    fn overlaps(&self, rect: Rect) -> impl Iterator<Item = (Band<'_>, usize, usize)> {
        self.iter().filter_map(move |band| {
            let y0 = rect.y.max(band.row0);
            let y1 = (rect.y + rect.h).min(band.row0 + band.rows);
            (y1 > y0).then_some((band, y0, y1 - y0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_rows_once_within_the_limit() {
        // 4096 px RGB: 48 KiB per row, 128 MiB bands of 2730 rows.
        let x = BandsLayout::banded("x", 4096, 4096 * 3, 128 << 20);
        assert_eq!(x.ranges(), vec![(0, 2730), (2730, 1366)]);
        assert!(x.specs().iter().all(|s| s.bytes <= 128 << 20));
        assert_eq!(x.specs()[1].label, "x rows 2730..4096");
        assert_eq!(x.bytes(), 4096 * 4096 * 3 * 4);
        // Small enough: one band, named as before.
        let small = BandsLayout::banded("x", 10, 30, 128 << 20);
        assert_eq!((small.ranges(), small.specs()[0].label.as_str()), (vec![(0, 10)], "x"));
        // A row over the limit still gets a band of its own.
        assert_eq!(BandsLayout::banded("x", 3, 100, 16).ranges(), vec![(0, 1), (1, 1), (2, 1)]);
        assert_eq!(BandsLayout::single("m", 1, 7).ranges(), vec![(0, 1)]);
    }
}
