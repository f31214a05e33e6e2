//! Exact tiled steps: the objective and its gradient computed tile by tile, equal to the untiled ones
//! within float32 rounding, so that memory no longer grows with the picture.
//!
//! The Gram matrix is a sum over positions, and given the global Grams, dL/dF at a position is local.
//! So a tiled evaluation takes two passes over the tiles (the interiors partition the image):
//! 1. *values*: each tile's region (its interior plus a halo that covers the receptive field of the
//!    deepest loss layer) runs forward; the interior's positions at each loss layer add to the global
//!    Grams and to the content loss. After the last tile the style loss is taken from the Grams.
//! 2. *gradients*: each tile's region, with a halo twice as wide, runs forward again and backward from
//!    dL/dF (the global Grams, the content targets); the tile keeps only its interior's dL/dx. About
//!    twice the margin: the features must be exact at every position whose receptive field reaches
//!    the interior, and they are exact one margin inside the region's cut (for relu5_1: 2·70 + 15
//!    → 160 px).
//!
//! Halos are derived from the layer table ([`receptive_margin`]) and rounded up to the pooling grid of
//! the deepest layer used, so that every region's pooling windows are the full image's.

use crate::bands::Bands;
use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::c4;
use crate::kernels::window::{At, Rect};
use crate::model::{downsampling, output_shapes, receptive_margin, FeatureStack, MapShape, Network};
use crate::objective::{Objective, SCALAR_SLOTS};
use crate::plan::{PlanError, TiledLayout};

/// One tile: its interior (the pixels whose gradient it gives) and the regions its two passes run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub interior: Rect,
    /// The values pass: interior + `halo_values`, clipped to the image.
    pub values: Rect,
    /// The gradient pass: interior + `halo_grads`, clipped to the image.
    pub grads: Rect,
}

/// The tiles of an image, worked out without a GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileGrid {
    pub width: usize,
    pub height: usize,
    /// The side of a tile's interior (the last row and column of tiles may be smaller).
    pub tile: usize,
    /// The grid the regions align to: 2 to the number of poolings up to the deepest loss layer.
    pub align: usize,
    pub halo_values: usize,
    pub halo_grads: usize,
    pub tiles: Vec<Tile>,
}

/// A tile's interior at one op's output: the window in the region's map and the same window in the
/// full image's map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InteriorAt {
    pub local: Rect,
    pub global: Rect,
}

impl TileGrid {
    /// Tiles of `tile` px (a multiple of 16) over a `width`×`height` image whose loss layers are
    /// `loss_ops` (ops of the layer table).
    pub fn new(width: usize, height: usize, tile: usize, loss_ops: &[usize]) -> Result<TileGrid, PlanError> {
        if tile == 0 || !tile.is_multiple_of(16) {
            return Err(PlanError(format!("tile: {tile} px is not a positive multiple of 16 (the pooling grid)")));
        }
        let deepest = *loss_ops.iter().max().ok_or_else(|| PlanError("tiling needs at least one loss layer".into()))?;
        let align = downsampling(deepest);
        // Values: an interior position q at op o spans its s = 2^pools pixels inside the interior, and
        // is exact when the region holds its receptive field, m(o) more on each side. Gradients: a
        // pixel p gets dL/dx from every q whose receptive field holds p (q's span within m of p), and
        // each such q must be exact: m + (s − 1) + m.
        let margin = loss_ops.iter().map(|&op| receptive_margin(op)).max().unwrap_or(0);
        let reach = loss_ops.iter().map(|&op| 2 * receptive_margin(op) + downsampling(op) - 1).max().unwrap_or(0);
        let (halo_values, halo_grads) = (margin.next_multiple_of(align), reach.next_multiple_of(align));
        let grow = |interior: Rect, halo: usize| {
            let (y0, x0) = (interior.y.saturating_sub(halo), interior.x.saturating_sub(halo));
            let (y1, x1) = ((interior.y + interior.h + halo).min(height), (interior.x + interior.w + halo).min(width));
            Rect { y: y0, x: x0, h: y1 - y0, w: x1 - x0 }
        };
        let mut tiles = Vec::new();
        for y in (0..height).step_by(tile) {
            for x in (0..width).step_by(tile) {
                let interior = Rect { y, x, h: tile.min(height - y), w: tile.min(width - x) };
                tiles.push(Tile { interior, values: grow(interior, halo_values), grads: grow(interior, halo_grads) });
            }
        }
        Ok(TileGrid { width, height, tile, align, halo_values, halo_grads, tiles })
    }

    /// The largest gradient-pass region (h, w): the tile stack's buffers are sized for it.
    pub fn largest_region(&self) -> (usize, usize) {
        let h = self.tiles.iter().map(|t| t.grads.h).max().unwrap_or(0);
        let w = self.tiles.iter().map(|t| t.grads.w).max().unwrap_or(0);
        (h, w)
    }

    /// `tile`'s interior at the output of op `op` (of a stack run on `region`), or None when no
    /// position of that map falls in it. `full` is that op's map for the whole image.
    pub fn interior_at(&self, tile: &Tile, region: Rect, op: usize, full: MapShape) -> Option<InteriorAt> {
        let s = downsampling(op);
        // Interiors start on the tile grid (a multiple of 16); the last one ends at the image's edge,
        // where the full map's floor-mode size ends too.
        let end = |start: usize, len: usize, image: usize, map: usize| if start + len == image { map } else { (start + len) / s };
        let (y0, x0) = (tile.interior.y / s, tile.interior.x / s);
        let y1 = end(tile.interior.y, tile.interior.h, self.height, full.h);
        let x1 = end(tile.interior.x, tile.interior.w, self.width, full.w);
        if y1 <= y0 || x1 <= x0 {
            return None;
        }
        let global = Rect { y: y0, x: x0, h: y1 - y0, w: x1 - x0 };
        let local = Rect { y: y0 - region.y / s, x: x0 - region.x / s, ..global };
        Some(InteriorAt { local, global })
    }

    /// Where the gradient pass of `tile` must backpropagate, for its interior's dL/dx to be exact:
    /// for each of the first `depth` ops, the rectangle of that op's input map (in the gradient
    /// region's map) whose positions reach the interior (their receptive fields meet it). Each
    /// op's rectangle holds the next shallower one grown by its 3×3 taps, so values outside them
    /// never reach the interior. Convs near the input cost most and have the smallest cones, so
    /// this saves most of the backward pass over the halo.
    pub fn backward_rects(&self, tile: &Tile, depth: usize) -> Vec<Rect> {
        let region = tile.grads;
        let outputs = output_shapes(region.h, region.w, depth);
        (0..depth)
            .map(|op| {
                // op's input is the image (op 0) or op − 1's output
                let (s, m, map) = match op {
                    0 => (1, 0, MapShape { h: region.h, w: region.w, c: 3 }),
                    _ => (downsampling(op - 1), receptive_margin(op - 1), outputs[op - 1]),
                };
                // positions q whose span [q·s, q·s + s) grown by m meets [start, start + len)
                let cone = |start: usize, len: usize, origin: usize, size: usize| {
                    let lo = start.saturating_sub(m) / s;
                    let end = (start + len - 1 + m) / s + 1;
                    let lo = lo.saturating_sub(origin / s).min(size);
                    (lo, (end - origin / s).min(size) - lo)
                };
                let (y, h) = cone(tile.interior.y, tile.interior.h, region.y, map.h);
                let (x, w) = cone(tile.interior.x, tile.interior.w, region.x, map.w);
                Rect { y, x, h, w }
            })
            .collect()
    }

    /// Where the map of op `op` for `region` lies in the full image's map (the window a content
    /// target is cut from).
    pub fn region_at(region: Rect, op: usize) -> Rect {
        let s = downsampling(op);
        let shape = output_shapes(region.h, region.w, op + 1)[op];
        Rect { y: region.y / s, x: region.x / s, h: shape.h, w: shape.w }
    }
}

/// The tiles' scratch buffers, allocated from a plan's [`TiledLayout`].
pub struct TileBuffers {
    tile_x: wgpu::Buffer,
    tile_grad: wgpu::Buffer,
    window: wgpu::Buffer,
    window_target: wgpu::Buffer,
    region_target: wgpu::Buffer,
}

impl TileBuffers {
    pub fn new(ctx: &GpuContext, layout: &TiledLayout) -> TileBuffers {
        TileBuffers {
            tile_x: ctx.alloc(&layout.tile_x),
            tile_grad: ctx.alloc(&layout.tile_grad),
            window: ctx.alloc(&layout.window),
            window_target: ctx.alloc(&layout.window_target),
            region_target: ctx.alloc(&layout.region_target),
        }
    }
}

/// Builds the dispatches of a tiled run: everything but the parts that act on the whole image (TV,
/// the finite check, the optimiser), which the engine adds as for an untiled run.
pub struct TiledPasses<'a> {
    pub net: &'a Network,
    pub grid: &'a TileGrid,
    /// Sized for the largest region ([`TileGrid::largest_region`]).
    pub stack: &'a FeatureStack,
    pub buffers: &'a TileBuffers,
    pub objective: &'a Objective,
    /// The loss maps' shapes for the whole image.
    pub full: &'a [MapShape],
}

/// Cuts `region` out of the full-size image `x` into `tile_x` and makes it the network input of
/// `stack`.
fn region_input(net: &Network, stack: &FeatureStack, region: Rect, x: &Bands, tile_x: &wgpu::Buffer) -> Vec<Dispatch> {
    let mut out = x.copy_out(&net.ctx, &net.kernels.window, 3, region, tile_x, At { width: region.w, y: 0, x: 0 });
    out.push(net.kernels.image.to_network_input(&net.ctx, region.h, region.w, tile_x, &stack.input, &net.input));
    out
}

/// A style image's Grams summed over its tiles, one list of dispatches per tile (to submit one by
/// one): `grams` are (op, G) for the style layers, `scale` gives each op's Gram factor (from the
/// full image's map, `full`). `x` holds the whole image.
#[allow(clippy::too_many_arguments)]
pub fn style_grams(
    net: &Network,
    grid: &TileGrid,
    stack: &FeatureStack,
    (x, tile_x, window, partials): (&Bands, &wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    grams: &[(usize, wgpu::Buffer)],
    full: &[MapShape],
    scale: impl Fn(MapShape) -> f32,
) -> Vec<Vec<Dispatch>> {
    let mut tiles = Vec::new();
    let mut started = vec![false; full.len()];
    for tile in &grid.tiles {
        let region = stack.resized(tile.values.h, tile.values.w);
        let mut out = region_input(net, &region, tile.values, x, tile_x);
        let shapes = region.shapes.clone();
        out.extend(region.forward(net, |op, features| {
            let Some(at) = grid.interior_at(tile, tile.values, op, full[op]) else { return Vec::new() };
            let mut d = Vec::new();
            for (_, gram) in grams.iter().filter(|(o, _)| *o == op) {
                let c4 = c4(full[op].c);
                let local = At { width: shapes[op].w, y: at.local.y, x: at.local.x };
                d.push(net.kernels.window.copy(&net.ctx, (at.local.h, at.local.w), c4, features, local, window, At { width: at.local.w, y: 0, x: 0 }));
                let shape = (at.local.h, at.local.w, full[op].c);
                d.extend(net.kernels.gram.build_into(&net.ctx, shape, window, partials, gram, scale(full[op]), started[op]));
            }
            started[op] = true;
            d
        }));
        tiles.push(out);
    }
    tiles
}

impl TiledPasses<'_> {
    fn region_input(&self, stack: &FeatureStack, region: Rect, x: &Bands) -> Vec<Dispatch> {
        region_input(self.net, stack, region, x, &self.buffers.tile_x)
    }

    /// `tile`'s interior within `region` (the window of the region's map that it covers).
    fn interior_in(tile: &Tile, region: Rect) -> Rect {
        let i = tile.interior;
        Rect { y: i.y - region.y, x: i.x - region.x, ..i }
    }

    /// The content targets at full size, one list of dispatches per tile: the image in `x` runs
    /// forward tile by tile, and each tile's interior at the content layers goes into the targets.
    pub fn content_targets(&self, x: &Bands) -> Vec<Vec<Dispatch>> {
        let mut tiles = Vec::new();
        for tile in &self.grid.tiles {
            let stack = self.stack.resized(tile.values.h, tile.values.w);
            let mut out = self.region_input(&stack, tile.values, x);
            out.extend(stack.forward(self.net, |_, _| Vec::new()));
            for (layer, target) in &self.objective.content {
                let Some(at) = self.grid.interior_at(tile, tile.values, layer.op, self.full[layer.op]) else { continue };
                let features = stack.kept_features(layer.op).expect("content layers are kept");
                let map = stack.shapes[layer.op];
                let from = At { width: map.w, y: at.local.y, x: at.local.x };
                out.extend(target.copy_in(&self.net.ctx, &self.net.kernels.window, c4(map.c), features, from, at.global));
            }
            tiles.push(out);
        }
        tiles
    }

    /// The values pass, one list of dispatches per tile: every tile's interior adds to the content
    /// loss and the Grams, then (with the last tile) the style loss is taken from the Grams.
    /// `written` tracks the scalar slots as in an untiled step.
    pub fn values(&self, x: &Bands, written: &mut [bool; SCALAR_SLOTS]) -> Vec<Vec<Dispatch>> {
        let mut tiles = Vec::new();
        let mut gram_started = vec![false; self.full.len()];
        let windows = (&self.buffers.window, &self.buffers.window_target);
        for tile in &self.grid.tiles {
            let stack = self.stack.resized(tile.values.h, tile.values.w);
            let mut out = self.region_input(&stack, tile.values, x);
            // TV: the terms of the interior's pixels (the region holds their right and lower neighbours)
            let (map, image) = ((tile.values.h, tile.values.w), (self.grid.height, self.grid.width));
            let owners = Self::interior_in(tile, tile.values);
            out.extend(self.objective.tile_tv_value(self.net, map, image, &self.buffers.tile_x, owners, written));
            let shapes = stack.shapes.clone();
            out.extend(stack.forward(self.net, |op, features| {
                let Some(at) = self.grid.interior_at(tile, tile.values, op, self.full[op]) else { return Vec::new() };
                let first = !gram_started[op];
                gram_started[op] = true;
                self.objective.tile_values_at(self.net, op, (shapes[op], self.full[op]), features, at, windows, first, written)
            }));
            tiles.push(out);
        }
        let style = self.objective.style_values(self.net, self.full, written);
        tiles.last_mut().expect("a grid has at least one tile").extend(style);
        tiles
    }

    /// The gradient pass, one list of dispatches per tile: every tile's region runs forward and
    /// backward from the global Grams and the content targets, and its interior's dL/dx goes into
    /// `grad_x` (which the tiles cover).
    pub fn gradients(&self, grad_x: &Bands, x: &Bands) -> Vec<Vec<Dispatch>> {
        let (net, b) = (self.net, self.buffers);
        let mut tiles = Vec::new();
        for tile in &self.grid.tiles {
            let region = tile.grads;
            let stack = self.stack.resized(region.h, region.w);
            let mut out = self.region_input(&stack, region, x);
            out.extend(stack.forward(net, |_, _| Vec::new()));
            let shapes = stack.shapes.clone();
            let within = self.grid.backward_rects(tile, stack.depth);
            let (backward, grad_v) = stack.backward(net, Some(&within), |op, features, grad, accumulate| {
                let region_at = TileGrid::region_at(region, op);
                let maps = (shapes[op], self.full[op]);
                self.objective.tile_grads_at(net, op, maps, features, grad, accumulate, region_at, &b.region_target)
            });
            out.extend(backward);
            out.push(net.kernels.image.network_grad_to_image(&net.ctx, region.h, region.w, grad_v, &b.tile_grad, &net.input));
            // TV's gradient over the region: exact one pixel inside its cut edges, so in the interior
            let (map, image) = ((region.h, region.w), (self.grid.height, self.grid.width));
            out.push(self.objective.tv_grad(net, map, image, &b.tile_x, &b.tile_grad));
            let inner = Self::interior_in(tile, region);
            let from = At { width: region.w, y: inner.y, x: inner.x };
            out.extend(grad_x.copy_in(&net.ctx, &net.kernels.window, 3, &b.tile_grad, from, tile.interior));
            tiles.push(out);
        }
        tiles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layer_index;

    fn ops(names: &[&str]) -> Vec<usize> {
        names.iter().map(|n| layer_index(n).unwrap()).collect()
    }

    #[test]
    fn halos_come_from_the_layer_table() {
        // relu5_1: convs at strides 1, 1, 2, 2, 4×4, 8×4, 16 → 70 px, on the 16 px grid.
        assert_eq!(receptive_margin(layer_index("relu5_1").unwrap()), 70);
        let g = TileGrid::new(300, 200, 64, &ops(&["relu1_1", "relu4_2", "relu5_1"])).unwrap();
        assert_eq!((g.align, g.halo_values, g.halo_grads), (16, 80, 160));
        // relu2_1 alone: margin 2 + 2 = 4, one pooling.
        let g = TileGrid::new(300, 200, 64, &ops(&["relu2_1"])).unwrap();
        assert_eq!((g.align, g.halo_values, g.halo_grads), (2, 4, 10));
    }

    /// The cones nest: every pixel a conv's backward reads (its rectangle grown by its taps, through
    /// any poolings above it) lies in the rectangle the next conv up computes, and op 0's is the
    /// interior itself.
    #[test]
    fn backward_cones_hold_what_the_op_below_reads() {
        use crate::model::{LayerOp, VGG19};
        for (w, h, tile, layers) in [
            (83, 61, 32, &["relu1_1", "relu4_2", "relu5_1"][..]),
            (300, 200, 64, &["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"][..]),
            (61, 47, 16, &["relu2_1", "relu3_1"][..]),
        ] {
            let loss = ops(layers);
            let depth = loss.iter().max().unwrap() + 1;
            let g = TileGrid::new(w, h, tile, &loss).unwrap();
            for t in &g.tiles {
                let rects = g.backward_rects(t, depth);
                let i = t.interior;
                assert_eq!(rects[0], Rect { y: i.y - t.grads.y, x: i.x - t.grads.x, ..i });
                let maps = output_shapes(t.grads.h, t.grads.w, depth);
                for j in (0..depth).filter(|&j| matches!(VGG19[j], LayerOp::Conv(_))) {
                    let r = rects[j];
                    assert!(r.h > 0 && r.w > 0, "{t:?} op {j}: empty cone");
                    // rows and columns of op j's output that its backward reads
                    let (mut y0, mut y1) = (r.y.saturating_sub(1), (r.y + r.h + 1).min(maps[j].h));
                    let (mut x0, mut x1) = (r.x.saturating_sub(1), (r.x + r.w + 1).min(maps[j].w));
                    let mut k = j + 1;
                    while k < depth && matches!(VGG19[k], LayerOp::Pool) {
                        (y0, y1, x0, x1) = (y0 / 2, (y1 - 1) / 2 + 1, x0 / 2, (x1 - 1) / 2 + 1);
                        (y1, x1) = (y1.min(maps[k].h), x1.min(maps[k].w));
                        k += 1;
                    }
                    if k < depth {
                        let c = rects[k];
                        assert!(
                            c.y <= y0 && y1 <= c.y + c.h && c.x <= x0 && x1 <= c.x + c.w,
                            "{w}×{h} tile {tile} {t:?}: op {j} reads rows {y0}..{y1} cols {x0}..{x1} of op {k}'s cone {c:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn interiors_partition_the_image_at_every_layer() {
        for (w, h, tile) in [(83, 61, 32), (96, 80, 32), (100, 33, 16), (64, 64, 64)] {
            let loss = ops(&["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"]);
            let g = TileGrid::new(w, h, tile, &loss).unwrap();
            for &op in &loss {
                let full = output_shapes(h, w, op + 1)[op];
                let mut covered = vec![0u32; full.h * full.w];
                for t in &g.tiles {
                    for (pass, region) in [t.values, t.grads].into_iter().enumerate() {
                        assert_eq!((region.y % g.align, region.x % g.align), (0, 0), "{region:?} off the pooling grid");
                        if let Some(at) = g.interior_at(t, region, op, full) {
                            let map = output_shapes(region.h, region.w, op + 1)[op];
                            assert!(at.local.y + at.local.h <= map.h && at.local.x + at.local.w <= map.w, "{at:?} outside {map:?}");
                            let r = TileGrid::region_at(region, op);
                            assert_eq!((r.y + at.local.y, r.x + at.local.x), (at.global.y, at.global.x));
                            assert!(r.y + r.h <= full.h && r.x + r.w <= full.w, "{r:?} outside {full:?}");
                            if pass == 0 {
                                for y in at.global.y..at.global.y + at.global.h {
                                    for x in at.global.x..at.global.x + at.global.w {
                                        covered[y * full.w + x] += 1;
                                    }
                                }
                            }
                        }
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "{w}×{h}, tile {tile}, op {op}: not a partition");
            }
        }
        assert!(TileGrid::new(64, 64, 40, &ops(&["relu1_1"])).is_err());
        assert!(TileGrid::new(64, 64, 0, &ops(&["relu1_1"])).is_err());
    }
}
