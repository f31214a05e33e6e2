//! A plan run in tiles ([`Plan::tiled`], see [`crate::tiling`]): the tile grid, the tiles' scratch
//! buffers, and the full-size tensors in bands.

use super::*;

/// The tiles of a tiled run and their scratch buffers (see [`crate::tiling`]).
#[derive(Clone, Debug)]
pub struct TiledLayout {
    pub grid: TileGrid,
    /// A tile region of x, and its dL/dx.
    pub tile_x: BufferSpec,
    pub tile_grad: BufferSpec,
    /// A tile interior's features at one loss layer, and the content target there.
    pub window: BufferSpec,
    pub window_target: BufferSpec,
    /// The content target over a tile's region.
    pub region_target: BufferSpec,
}

impl TiledLayout {
    pub fn buffers(&self) -> impl Iterator<Item = &BufferSpec> {
        [&self.tile_x, &self.tile_grad, &self.window, &self.window_target, &self.region_target].into_iter()
    }
}

impl Plan {
    /// This plan run in tiles of `tile` px (a multiple of 16; see [`crate::tiling`]): the feature
    /// stack shrinks to the largest tile region, and the tiles' scratch buffers are added. The image,
    /// the optimiser's state, the Grams and the content targets stay at full size, the large ones in
    /// bands of at most 128 MiB (WebGPU's default binding; [`crate::bands`]). Style images larger
    /// than a tile have their Grams summed over tiles too.
    pub fn tiled(self, tile: usize) -> Result<Plan, PlanError> {
        self.tiled_in_bands(tile, WEBGPU_DEFAULT_MAX_BINDING)
    }

    /// [`Plan::tiled`] with bands of at most `band_bytes` (tests use small ones).
    pub fn tiled_in_bands(mut self, tile: usize, band_bytes: u64) -> Result<Plan, PlanError> {
        let (h, w) = (self.height as usize, self.width as usize);
        self.image = ImageLayout::new(h, w, Some(band_bytes));
        if self.image.x.specs().len() > 1 && self.optimizer.kind == OptimizerKind::Lbfgs {
            return refuse(format!(
                "L-BFGS keeps {} full-size images of {:.0} MiB each ({}×{} px): more than one GPU buffer can hold; use Adam at \
                 this size",
                2 * self.optimizer.lbfgs_history + 2,
                self.image.x.bytes() as f64 / 1048576.0,
                w,
                h
            ));
        }
        self.optimizer_state = OptimizerLayout::for_image(&self.optimizer, &self.image.x);
        let full_maps = self.objective_shapes();
        for (target, layer) in self.objective.content.iter_mut().zip(&self.layers.content) {
            let map = full_maps[layer.op];
            *target = BandsLayout::banded("content target", map.h, map.w * c4(map.c), band_bytes);
        }
        let loss_ops: Vec<usize> = self.layers.content.iter().chain(&self.layers.style).map(|l| l.op).collect();
        let content_ops: Vec<usize> = self.layers.content.iter().map(|l| l.op).collect();
        let grid = TileGrid::new(self.width as usize, self.height as usize, tile, &loss_ops)?;
        let (rh, rw) = grid.largest_region();
        // Each tile: forward over its values region, forward over its gradient region and backward
        // within the interior's cone.
        let depth = self.layers.depth;
        let backward = |t: &tiling::Tile| {
            let cone: Vec<(usize, usize)> = grid.backward_rects(t, depth).iter().map(|r| (r.h, r.w)).collect();
            conv_flops(&cone, depth)
        };
        self.flops_per_step = grid
            .tiles
            .iter()
            .map(|t| forward_flops(t.values.h, t.values.w, depth) + forward_flops(t.grads.h, t.grads.w, depth) + backward(t))
            .sum();
        self.stack = StackLayout::new(rh, rw, self.layers.depth, &loss_ops, &content_ops, self.pooling);
        let full = &self.objective_shapes();
        // A tile's interior at op o: at most (tile / 2^pools)² positions.
        let window = |ops: &[usize]| {
            ops.iter().map(|&o| (tile / model::downsampling(o)).pow(2) * c4(full[o].c)).max().unwrap_or(0).max(1)
        };
        let region_target = content_ops.iter().map(|&o| self.stack.shapes[o].padded_len()).max().unwrap_or(0).max(1);
        let style_ops: Vec<usize> = self.layers.style.iter().map(|l| l.op).collect();
        let styles = std::mem::take(&mut self.styles);
        self.styles = styles
            .into_iter()
            .map(|s| if s.width.max(s.height) as usize > tile { s.tiled(tile, &style_ops, self.pooling, band_bytes) } else { Ok(s) })
            .collect::<Result<_, _>>()?;
        let f32s = |label: &str, len: usize| BufferSpec::new(label, len as u64 * 4);
        self.tiling = Some(TiledLayout {
            tile_x: f32s("tile x", rh * rw * 3),
            tile_grad: f32s("tile dL/dx", rh * rw * 3),
            window: f32s("tile interior features", window(&loss_ops)),
            window_target: f32s("tile interior content target", window(&content_ops)),
            region_target: f32s("tile region content target", region_target),
            grid,
        });
        Ok(self)
    }
}
