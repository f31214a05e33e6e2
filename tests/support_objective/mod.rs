//! An independent f64 CPU implementation of the whole objective and its gradient,
//! written straight from the formulas (CHW layout, no padding, plain loops).
#![allow(dead_code)]

use stylize::weights::Weights;

/// VGG19 ops up to conv5_1 in network order: Some((cin, cout, conv name)) or None for a pool.
pub const OPS: [Option<(usize, usize, &str)>; 17] = [
    Some((3, 64, "conv1_1")),
    Some((64, 64, "conv1_2")),
    None,
    Some((64, 128, "conv2_1")),
    Some((128, 128, "conv2_2")),
    None,
    Some((128, 256, "conv3_1")),
    Some((256, 256, "conv3_2")),
    Some((256, 256, "conv3_3")),
    Some((256, 256, "conv3_4")),
    None,
    Some((256, 512, "conv4_1")),
    Some((512, 512, "conv4_2")),
    Some((512, 512, "conv4_3")),
    Some((512, 512, "conv4_4")),
    None,
    Some((512, 512, "conv5_1")),
];

pub fn op_of(relu: &str) -> usize {
    let conv = relu.replace("relu", "conv");
    OPS.iter().position(|o| matches!(o, Some((_, _, n)) if *n == conv)).expect("known layer")
}

#[derive(Clone)]
pub struct Map {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub v: Vec<f64>, // CHW
}

impl Map {
    fn zeros(c: usize, h: usize, w: usize) -> Map {
        Map { c, h, w, v: vec![0.0; c * h * w] }
    }
    fn at(&self, c: usize, y: usize, x: usize) -> f64 {
        self.v[(c * self.h + y) * self.w + x]
    }
}

pub struct Reference<'a> {
    pub weights: &'a Weights,
    pub avg_pool: bool,
}

/// What the forward pass keeps for the backward pass.
struct Tape {
    inputs: Vec<Map>,  // input of each op
    outputs: Vec<Map>, // output of each op
}

impl<'a> Reference<'a> {
    /// v = scale·x[perm] − mean, as a 3×H×W map, from HWC RGB x.
    pub fn preprocess(&self, x: &[f64], h: usize, w: usize) -> Map {
        let input = &self.weights.input;
        let perm = if input.channel_order.eq_ignore_ascii_case("BGR") { [2, 1, 0] } else { [0, 1, 2] };
        let mut m = Map::zeros(3, h, w);
        for k in 0..3 {
            for p in 0..h * w {
                m.v[k * h * w + p] = input.scale as f64 * x[p * 3 + perm[k]] - input.mean[k] as f64;
            }
        }
        m
    }

    fn conv(&self, name: &str, input: &Map) -> Map {
        let layer = self.weights.layer(name).expect("layer present");
        let (cin, cout, h, w) = (layer.cin, layer.cout, input.h, input.w);
        let mut out = Map::zeros(cout, h, w);
        for co in 0..cout {
            for y in 0..h {
                for x in 0..w {
                    let mut acc = layer.bias[co] as f64;
                    for ky in 0..3 {
                        let yy = y as isize + ky as isize - 1;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for kx in 0..3 {
                            let xx = x as isize + kx as isize - 1;
                            if xx < 0 || xx >= w as isize {
                                continue;
                            }
                            let wbase = ((co * 3 + ky) * 3 + kx) * cin;
                            for ci in 0..cin {
                                acc += layer.kernel[wbase + ci] as f64 * input.at(ci, yy as usize, xx as usize);
                            }
                        }
                    }
                    out.v[(co * h + y) * w + x] = acc.max(0.0);
                }
            }
        }
        out
    }

    /// dL/d(input) from dL/d(post-ReLU output) `g` and the output (for the ReLU mask).
    fn conv_backward(&self, name: &str, output: &Map, g: &Map) -> Map {
        let layer = self.weights.layer(name).expect("layer present");
        let (cin, cout, h, w) = (layer.cin, layer.cout, output.h, output.w);
        let mut d = Map::zeros(cin, h, w);
        for co in 0..cout {
            for y in 0..h {
                for x in 0..w {
                    let i = (co * h + y) * w + x;
                    if output.v[i] <= 0.0 {
                        continue;
                    }
                    let go = g.v[i];
                    for ky in 0..3 {
                        let yy = y as isize + ky as isize - 1;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for kx in 0..3 {
                            let xx = x as isize + kx as isize - 1;
                            if xx < 0 || xx >= w as isize {
                                continue;
                            }
                            let wbase = ((co * 3 + ky) * 3 + kx) * cin;
                            for ci in 0..cin {
                                d.v[(ci * h + yy as usize) * w + xx as usize] += layer.kernel[wbase + ci] as f64 * go;
                            }
                        }
                    }
                }
            }
        }
        d
    }

    fn pool(&self, input: &Map) -> Map {
        let (h, w) = (input.h / 2, input.w / 2);
        let mut out = Map::zeros(input.c, h, w);
        for c in 0..input.c {
            for y in 0..h {
                for x in 0..w {
                    let q = [
                        input.at(c, 2 * y, 2 * x),
                        input.at(c, 2 * y, 2 * x + 1),
                        input.at(c, 2 * y + 1, 2 * x),
                        input.at(c, 2 * y + 1, 2 * x + 1),
                    ];
                    out.v[(c * h + y) * w + x] =
                        if self.avg_pool { q.iter().sum::<f64>() / 4.0 } else { q.iter().cloned().fold(f64::MIN, f64::max) };
                }
            }
        }
        out
    }

    fn pool_backward(&self, input: &Map, g: &Map) -> Map {
        let mut d = Map::zeros(input.c, input.h, input.w);
        for c in 0..input.c {
            for y in 0..g.h {
                for x in 0..g.w {
                    let go = g.v[(c * g.h + y) * g.w + x];
                    let cells = [(2 * y, 2 * x), (2 * y, 2 * x + 1), (2 * y + 1, 2 * x), (2 * y + 1, 2 * x + 1)];
                    if self.avg_pool {
                        for (yy, xx) in cells {
                            d.v[(c * input.h + yy) * input.w + xx] += go / 4.0;
                        }
                    } else {
                        let mut best = 0;
                        for k in 1..4 {
                            if input.at(c, cells[k].0, cells[k].1) > input.at(c, cells[best].0, cells[best].1) {
                                best = k;
                            }
                        }
                        let (yy, xx) = cells[best];
                        d.v[(c * input.h + yy) * input.w + xx] += go;
                    }
                }
            }
        }
        d
    }

    fn forward(&self, v: Map, depth: usize) -> Tape {
        let mut inputs = Vec::new();
        let mut outputs: Vec<Map> = Vec::new();
        let mut cur = v;
        for op in OPS.iter().take(depth) {
            let out = match op {
                Some((_, _, name)) => self.conv(name, &cur),
                None => self.pool(&cur),
            };
            inputs.push(cur);
            cur = out.clone();
            outputs.push(out);
        }
        Tape { inputs, outputs }
    }

    pub fn gram(f: &Map, scale: f64) -> Vec<f64> {
        let n = f.h * f.w;
        let mut g = vec![0.0; f.c * f.c];
        for a in 0..f.c {
            for b in 0..=a {
                let s: f64 = (0..n).map(|p| f.v[a * n + p] * f.v[b * n + p]).sum::<f64>() * scale;
                g[a * f.c + b] = s;
                g[b * f.c + a] = s;
            }
        }
        g
    }

    /// Gram matrices of an image at the given ops (gram_scale_seed: unnormalised).
    pub fn grams(&self, x: &[f64], h: usize, w: usize, ops: &[usize], seed_form: bool) -> Vec<Vec<f64>> {
        let depth = ops.iter().max().unwrap() + 1;
        let tape = self.forward(self.preprocess(x, h, w), depth);
        ops.iter()
            .map(|&op| {
                let f = &tape.outputs[op];
                Self::gram(f, if seed_form { 1.0 } else { 1.0 / (f.c * f.h * f.w) as f64 })
            })
            .collect()
    }

    pub fn features(&self, x: &[f64], h: usize, w: usize, op: usize) -> Map {
        self.forward(self.preprocess(x, h, w), op + 1).outputs[op].clone()
    }
}

pub struct Problem {
    pub h: usize,
    pub w: usize,
    pub content: Vec<(usize, f64, Map)>,     // (op, weight, target features)
    pub style: Vec<(usize, f64, Vec<f64>)>,  // (op, weight, target Gram)
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub seed_form: bool,
}

pub struct Value {
    pub content: f64,
    pub style: f64,
    pub tv: f64,
    pub total: f64,
    pub grad: Vec<f64>, // HWC RGB
}

impl<'a> Reference<'a> {
    pub fn objective(&self, p: &Problem, x: &[f64]) -> Value {
        let (h, w) = (p.h, p.w);
        let depth = p.content.iter().map(|c| c.0).chain(p.style.iter().map(|s| s.0)).max().unwrap() + 1;
        let tape = self.forward(self.preprocess(x, h, w), depth);
        let mut grads: Vec<Option<Map>> = vec![None; depth];
        let add = |op: usize, g: Map, grads: &mut Vec<Option<Map>>| match &mut grads[op] {
            Some(existing) => existing.v.iter_mut().zip(&g.v).for_each(|(a, b)| *a += b),
            slot => *slot = Some(g),
        };
        let mut content = 0.0;
        for (op, wt, target) in &p.content {
            let f = &tape.outputs[*op];
            let n = f.v.len() as f64;
            content += wt * f.v.iter().zip(&target.v).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n;
            let g = Map { v: f.v.iter().zip(&target.v).map(|(a, b)| p.alpha * wt * 2.0 * (a - b) / n).collect(), ..f.clone() };
            add(*op, g, &mut grads);
        }
        let mut style = 0.0;
        for (op, wt, target) in &p.style {
            let f = &tape.outputs[*op];
            let (c, n) = (f.c, f.h * f.w);
            let chw = (c * n) as f64;
            let gram = Self::gram(f, if p.seed_form { 1.0 } else { 1.0 / chw });
            let e: Vec<f64> = gram.iter().zip(target).map(|(a, b)| a - b).collect();
            let mean_sq = e.iter().map(|v| v * v).sum::<f64>() / (c * c) as f64;
            style += wt * if p.seed_form { mean_sq / chw } else { mean_sq };
            // dL/dF = β·w·4/(C²·CHW) · E F  (both forms)
            let coef = p.beta * wt * 4.0 / ((c * c) as f64 * chw);
            let mut g = Map::zeros(c, f.h, f.w);
            for a in 0..c {
                for b in 0..c {
                    let eab = e[a * c + b] * coef;
                    if eab == 0.0 {
                        continue;
                    }
                    for q in 0..n {
                        g.v[a * n + q] += eab * f.v[b * n + q];
                    }
                }
            }
            add(*op, g, &mut grads);
        }
        // Backward through the stack.
        let mut g = grads[depth - 1].take().expect("deepest op has a loss");
        for i in (0..depth).rev() {
            g = match OPS[i] {
                Some((_, _, name)) => self.conv_backward(name, &tape.outputs[i], &g),
                None => self.pool_backward(&tape.inputs[i], &g),
            };
            if i > 0 {
                if let Some(extra) = grads[i - 1].take() {
                    g.v.iter_mut().zip(&extra.v).for_each(|(a, b)| *a += b);
                }
            }
        }
        // Back to x: v_k = s·x[perm k] − mean.
        let input = &self.weights.input;
        let perm = if input.channel_order.eq_ignore_ascii_case("BGR") { [2, 1, 0] } else { [0, 1, 2] };
        let mut grad = vec![0.0; h * w * 3];
        for k in 0..3 {
            for q in 0..h * w {
                grad[q * 3 + perm[k]] += input.scale as f64 * g.v[k * h * w + q];
            }
        }
        // Total variation on x.
        let mut tv = 0.0;
        let tv_scale = 1.0 / (3 * h * w) as f64;
        for y in 0..h {
            for xx in 0..w {
                for c in 0..3 {
                    let i = (y * w + xx) * 3 + c;
                    if y + 1 < h {
                        let d = x[i + w * 3] - x[i];
                        tv += d * d;
                        grad[i + w * 3] += p.gamma * tv_scale * 2.0 * d;
                        grad[i] -= p.gamma * tv_scale * 2.0 * d;
                    }
                    if xx + 1 < w {
                        let d = x[i + 3] - x[i];
                        tv += d * d;
                        grad[i + 3] += p.gamma * tv_scale * 2.0 * d;
                        grad[i] -= p.gamma * tv_scale * 2.0 * d;
                    }
                }
            }
        }
        tv *= tv_scale;
        Value { content, style, tv, total: p.alpha * content + p.beta * style + p.gamma * tv, grad }
    }
}
