//! Images in and out: decoding PNG/JPEG (honouring EXIF orientation), RGBA8 from the browser,
//! resizing, and PNG encoding. Works natively and in wasm32; only `load`/`save_png` touch files.
//!
//! The engine's image is [`Image`]: HWC RGB f32 in [0,1]. Transparent pixels are composited over
//! white, so a PNG with an alpha channel looks as it does on a white page.

use std::fmt;
use std::io::Cursor;

use image::{imageops::FilterType, DynamicImage, ImageDecoder, ImageReader, Rgb};

/// An RGB image, HWC, values in [0,1]; `rgb.len() == width * height * 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<f32>,
}

/// Why an image could not be read or written, in words for the user.
#[derive(Debug)]
pub enum ImageError {
    /// The bytes are not a PNG or JPEG at all.
    NotAnImage,
    /// A PNG/JPEG that fails to decode (truncated, corrupt, unsupported variant).
    Broken(String),
    /// Width or height is 0.
    ZeroSize { width: u32, height: u32 },
    /// A pixel buffer whose length does not match its size.
    BadBuffer { expected: u64, got: u64 },
    /// Too large to hold (more pixels than memory or the decoder's limits allow).
    TooLarge { width: u32, height: u32 },
    /// Reading or writing a file failed.
    Io { path: String, error: std::io::Error },
    /// PNG encoding failed.
    Encode(String),
    /// An error about a file: the path and what went wrong with its content.
    InFile {
        path: String,
        error: Box<ImageError>,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::NotAnImage => f.write_str("not a PNG or JPEG image"),
            ImageError::Broken(e) => write!(f, "the image is broken or unsupported: {e}"),
            ImageError::ZeroSize { width, height } => {
                write!(f, "the image has zero size ({width}x{height})")
            }
            ImageError::BadBuffer { expected, got } => {
                write!(
                    f,
                    "the pixel buffer holds {got} bytes but its size needs {expected}"
                )
            }
            ImageError::TooLarge { width, height } => write!(
                f,
                "the image is {width}x{height} = {:.1} megapixels, more than the {:.0} megapixels accepted: downscale it first",
                *width as f64 * *height as f64 / 1e6,
                MAX_INPUT_PIXELS as f64 / 1e6
            ),
            ImageError::Io { path, error } => write!(f, "{path}: {error}"),
            ImageError::Encode(e) => write!(f, "PNG encoding failed: {e}"),
            ImageError::InFile { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for ImageError {}

/// Pixels per input image we accept (a 50-megapixel camera's photo), checked from the file's header
/// before decoding, so that a small file declaring a huge image (a decompression bomb) is refused
/// before it allocates anything. The page asks for this figure (it is the one limit of both).
pub const MAX_INPUT_PIXELS: u64 = 50_000_000;
/// What the decoder may allocate at most (a 50 MP RGBA16 image is 400 MB).
const MAX_DECODE_ALLOC: u64 = 512 << 20;

impl Image {
    /// An image from its parts, checking that the buffer matches the size.
    pub fn new(width: u32, height: u32, rgb: Vec<f32>) -> Result<Image, ImageError> {
        check_size(width, height)?;
        let expected = width as u64 * height as u64 * 3;
        if rgb.len() as u64 != expected {
            return Err(ImageError::BadBuffer {
                expected,
                got: rgb.len() as u64,
            });
        }
        Ok(Image { width, height, rgb })
    }

    /// From RGBA8 pixels (as a browser canvas gives them); alpha is composited over white.
    pub fn from_rgba8(rgba: &[u8], width: u32, height: u32) -> Result<Image, ImageError> {
        check_size(width, height)?;
        let expected = width as u64 * height as u64 * 4;
        if rgba.len() as u64 != expected {
            return Err(ImageError::BadBuffer {
                expected,
                got: rgba.len() as u64,
            });
        }
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for px in rgba.chunks_exact(4) {
            let a = px[3] as f32 / 255.0;
            for &c in &px[..3] {
                rgb.push(over_white(c as f32 / 255.0, a));
            }
        }
        Ok(Image { width, height, rgb })
    }

    /// Pixels as RGBA8 (alpha 255), rounding and clamping to [0,255].
    pub fn to_rgba8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rgb.len() / 3 * 4);
        for px in self.rgb.chunks_exact(3) {
            out.extend(px.iter().map(|&v| to_u8(v)));
            out.push(255);
        }
        out
    }

    /// The image as PNG bytes (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>, ImageError> {
        check_size(self.width, self.height)?;
        let expected = self.width as u64 * self.height as u64 * 3;
        if self.rgb.len() as u64 != expected {
            return Err(ImageError::BadBuffer {
                expected,
                got: self.rgb.len() as u64,
            });
        }
        let rgb8: Vec<u8> = self.rgb.iter().map(|&v| to_u8(v)).collect();
        let mut out = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut out);
        image::ImageEncoder::write_image(
            encoder,
            &rgb8,
            self.width,
            self.height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| ImageError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Writes the image as a PNG file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_png(&self, path: &std::path::Path) -> Result<(), ImageError> {
        let bytes = self.encode_png()?;
        std::fs::write(path, bytes).map_err(|error| ImageError::Io {
            path: path.display().to_string(),
            error,
        })
    }

    /// The value of channel `c` at (x, y).
    pub fn at(&self, x: u32, y: u32, c: usize) -> f32 {
        self.rgb[(y as usize * self.width as usize + x as usize) * 3 + c]
    }

    /// A view of the pixels for the `image` crate's resizing (no copy: inputs can be 50 MP).
    fn as_buffer(&self) -> Result<image::ImageBuffer<Rgb<f32>, &[f32]>, ImageError> {
        image::ImageBuffer::from_raw(self.width, self.height, &self.rgb[..]).ok_or(
            ImageError::BadBuffer {
                expected: self.width as u64 * self.height as u64 * 3,
                got: self.rgb.len() as u64,
            },
        )
    }
}

fn over_white(c: f32, a: f32) -> f32 {
    c * a + (1.0 - a)
}

fn to_u8(v: f32) -> u8 {
    // NaN maps to 0 (`as` saturates and sends NaN to 0).
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::ZeroSize { width, height });
    }
    if width as u64 * height as u64 > MAX_INPUT_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

/// Decodes a PNG or JPEG, turned upright by its EXIF orientation, alpha composited over white.
pub fn decode(bytes: &[u8]) -> Result<Image, ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Broken(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Png) => {
            // The PNG decoder calls a 0-pixel side merely "invalid"; say what it is.
            if let Some(ihdr) = bytes.get(16..24) {
                let width = u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]);
                let height = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
                check_size(width, height)?;
            }
        }
        Some(image::ImageFormat::Jpeg) => {}
        _ => return Err(ImageError::NotAnImage),
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    // A broken EXIF block must not make the picture unreadable: fall back to "no rotation".
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    let (width, height) = (img.width(), img.height());
    check_size(width, height)?;
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut push = |px: [f32; 4]| {
        let a = px[3].clamp(0.0, 1.0);
        for &c in &px[..3] {
            rgb.push(over_white(c.clamp(0.0, 1.0), a));
        }
    };
    if is_8bit(&img) {
        // 8-bit sources go through RGBA8: a quarter of the memory of an f32 copy for big photos.
        for px in img.into_rgba8().pixels() {
            push(px.0.map(|v| v as f32 / 255.0));
        }
    } else {
        for px in img.into_rgba32f().pixels() {
            push(px.0);
        }
    }
    Ok(Image { width, height, rgb })
}

fn is_8bit(img: &DynamicImage) -> bool {
    matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    )
}

fn describe(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::Broken(format!("too large to decode ({e})")),
        image::ImageError::Unsupported(_) => ImageError::Broken(e.to_string()),
        other => ImageError::Broken(other.to_string()),
    }
}

/// Width and height from an image file's header, without decoding it (`stylize plan`).
#[cfg(not(target_arch = "wasm32"))]
pub fn probe(path: &std::path::Path) -> Result<(u32, u32), ImageError> {
    let shown = path.display().to_string();
    let in_file = |error: ImageError| ImageError::InFile { path: shown.clone(), error: Box::new(error) };
    let reader = ImageReader::open(path)
        .map_err(|error| ImageError::Io { path: shown.clone(), error })?
        .with_guessed_format()
        .map_err(|error| ImageError::Io { path: shown.clone(), error })?;
    if !matches!(reader.format(), Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err(in_file(ImageError::NotAnImage));
    }
    let mut decoder = reader.into_decoder().map_err(|e| in_file(describe(e)))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height).map_err(in_file)?;
    use image::metadata::Orientation::*;
    match decoder.orientation().unwrap_or(NoTransforms) {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => Ok((height, width)),
        _ => Ok((width, height)),
    }
}

/// Reads and decodes an image file; errors name the path.
#[cfg(not(target_arch = "wasm32"))]
pub fn load(path: &std::path::Path) -> Result<Image, ImageError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ImageError::Io {
        path: shown.clone(),
        error,
    })?;
    decode(&bytes).map_err(|e| ImageError::InFile {
        path: shown,
        error: Box::new(e),
    })
}

/// The size whose longest side is `n`, keeping the aspect ratio (each side at least 1).
pub fn size_for_longest(width: u32, height: u32, n: u32) -> (u32, u32) {
    let n = n.max(1);
    let longest = width.max(height).max(1) as f64;
    let scale = n as f64 / longest;
    let side = |s: u32| ((s as f64 * scale).round() as u32).clamp(1, n);
    if width >= height {
        (n, side(height))
    } else {
        (side(width), n)
    }
}

/// Resized so that its longest side is `n`, keeping the aspect ratio. An image whose longest side
/// already is `n` comes back pixel for pixel.
pub fn resize_longest(img: &Image, n: u32) -> Image {
    let (w, h) = size_for_longest(img.width, img.height, n);
    resize_to(img, w, h)
}

/// Resized to exactly `width`×`height` (e.g. an init image to the content's size). Bicubic
/// (Catmull-Rom, antialiased when shrinking: the filter widens with the scale), clamped to [0,1]
/// against its ringing; the same size comes back unchanged. Bicubic, as PIL's and torchvision's
/// default, because the style loss is sensitive to the fine detail a filter keeps: with it, the
/// objective matches shared/notes/reference-result.md (1.540e8 at step 1); Lanczos3 gave 1.74e8.
pub fn resize_to(img: &Image, width: u32, height: u32) -> Image {
    let (width, height) = (width.max(1), height.max(1));
    if width == img.width && height == img.height {
        return img.clone();
    }
    let Ok(buffer) = img.as_buffer() else {
        // An inconsistent Image (its fields are public): fall back to a blank one of the asked size.
        return Image {
            width,
            height,
            rgb: vec![1.0; width as usize * height as usize * 3],
        };
    };
    let resized = image::imageops::resize(&buffer, width, height, FilterType::CatmullRom);
    let rgb = resized
        .pixels()
        .flat_map(|Rgb(px)| px.map(|v| v.clamp(0.0, 1.0)))
        .collect();
    Image { width, height, rgb }
}

/// A deterministic `size`×`size` test pattern, for benchmarks (the pixels do not change the work).
pub fn test_pattern(size: u32, phase: f32) -> Image {
    let mut rgb = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 / size as f32, y as f32 / size as f32);
            rgb.push(0.5 + 0.5 * (9.0 * fx + phase).sin());
            rgb.push(0.5 + 0.5 * (7.0 * fy - phase).cos());
            rgb.push(0.5 + 0.5 * (5.0 * (fx + fy) + 2.0 * phase).sin());
        }
    }
    Image { width: size, height: size, rgb }
}
