//! Image decoding (formats, alpha, EXIF orientation, bad input), resizing and PNG output.

mod common;

use std::path::PathBuf;

use common::{CHELSEA, STARRY};
use stylize::imageio::{self, decode, resize_longest, resize_to, Image, ImageError};

fn temp_path(name: &str) -> PathBuf {
    common::temp_dir("imageio").join(name)
}

/// An image whose pixel (x, y) is `f(x, y)`.
fn image_from(width: u32, height: u32, f: impl Fn(u32, u32) -> [f32; 3]) -> Image {
    let mut rgb = Vec::new();
    for y in 0..height {
        for x in 0..width {
            rgb.extend(f(x, y));
        }
    }
    Image::new(width, height, rgb).unwrap()
}

fn pixel(img: &Image, x: u32, y: u32) -> [f32; 3] {
    [img.at(x, y, 0), img.at(x, y, 1), img.at(x, y, 2)]
}

fn close(a: [f32; 3], b: [f32; 3], tol: f32) -> bool {
    a.iter().zip(b).all(|(p, q)| (p - q).abs() <= tol)
}

#[test]
fn decodes_png_and_jpeg() {
    let cat = imageio::load(CHELSEA.as_ref()).unwrap();
    assert_eq!((cat.width, cat.height), (451, 300));
    assert_eq!(cat.rgb.len(), 451 * 300 * 3);
    assert!(cat.rgb.iter().all(|v| (0.0..=1.0).contains(v)));
    // The PNG is 8-bit: every value is k/255, and the picture is not flat.
    let raw = image::open(CHELSEA).unwrap().to_rgb8();
    assert_eq!(
        pixel(&cat, 200, 100),
        raw.get_pixel(200, 100).0.map(|v| v as f32 / 255.0)
    );
    let mean = cat.rgb.iter().sum::<f32>() / cat.rgb.len() as f32;
    let var = cat.rgb.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / cat.rgb.len() as f32;
    assert!(var > 0.01, "variance {var}");

    let starry = imageio::load(STARRY.as_ref()).unwrap();
    assert_eq!((starry.width, starry.height), (1024, 640));
}

#[test]
fn rgba8_alpha_is_composited_over_white() {
    let rgba = [
        10, 20, 30, 255, // opaque: exact
        255, 0, 0, 0, // transparent red: white
        0, 0, 0, 128, // half-transparent black: about half grey
        0, 255, 0, 51, // 20% green
    ];
    let img = Image::from_rgba8(&rgba, 2, 2).unwrap();
    assert_eq!(
        pixel(&img, 0, 0),
        [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0]
    );
    assert_eq!(pixel(&img, 1, 0), [1.0, 1.0, 1.0]);
    let half = 1.0 - 128.0 / 255.0;
    assert!(close(pixel(&img, 0, 1), [half; 3], 1e-6));
    assert!(close(pixel(&img, 1, 1), [0.8, 1.0, 0.8], 1e-6));
    assert_eq!(img.to_rgba8()[..4], [10, 20, 30, 255]);
    assert_eq!(img.to_rgba8()[4..8], [255, 255, 255, 255]);
}

#[test]
fn rgba8_buffers_are_checked() {
    assert!(Image::from_rgba8(&[0; 16], 2, 2).is_ok());
    assert!(matches!(
        Image::from_rgba8(&[0; 15], 2, 2),
        Err(ImageError::BadBuffer {
            expected: 16,
            got: 15
        })
    ));
    assert!(matches!(
        Image::from_rgba8(&[0; 20], 2, 2),
        Err(ImageError::BadBuffer { .. })
    ));
    assert!(matches!(
        Image::from_rgba8(&[], 0, 5),
        Err(ImageError::ZeroSize { .. })
    ));
    assert!(matches!(
        Image::from_rgba8(&[], 5, 0),
        Err(ImageError::ZeroSize { .. })
    ));
    // Sizes whose byte count overflows u32 are refused without allocating.
    assert!(Image::from_rgba8(&[0; 4], u32::MAX, u32::MAX).is_err());
    assert!(Image::new(2, 2, vec![0.0; 11]).is_err());
    let msg = Image::from_rgba8(&[0; 15], 2, 2).unwrap_err().to_string();
    assert!(msg.contains("15") && msg.contains("16"), "{msg}");
}

#[test]
fn transparent_png_is_composited_over_white() {
    let mut buf = image::RgbaImage::new(2, 1);
    buf.put_pixel(0, 0, image::Rgba([0, 0, 255, 0]));
    buf.put_pixel(1, 0, image::Rgba([0, 0, 0, 255]));
    let mut bytes = Vec::new();
    buf.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let img = decode(&bytes).unwrap();
    assert_eq!(pixel(&img, 0, 0), [1.0, 1.0, 1.0]);
    assert_eq!(pixel(&img, 1, 0), [0.0, 0.0, 0.0]);
}

#[test]
fn sixteen_bit_png_keeps_its_precision() {
    let mut buf: image::ImageBuffer<image::Rgb<u16>, Vec<u16>> = image::ImageBuffer::new(1, 1);
    buf.put_pixel(0, 0, image::Rgb([1000, 30000, 65535]));
    let mut bytes = Vec::new();
    buf.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let img = decode(&bytes).unwrap();
    assert!(close(
        pixel(&img, 0, 0),
        [1000.0 / 65535.0, 30000.0 / 65535.0, 1.0],
        1e-6
    ));
}

#[test]
fn bad_bytes_give_clear_errors() {
    let msg = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
    assert!(matches!(decode(b""), Err(ImageError::NotAnImage)));
    assert!(matches!(
        decode(b"hello, I am a text file\n"),
        Err(ImageError::NotAnImage)
    ));
    assert!(matches!(
        decode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        Err(ImageError::NotAnImage)
    ));
    assert_eq!(msg(b"%PDF-1.4"), "not a PNG or JPEG image");

    let png = std::fs::read(CHELSEA).unwrap();
    for cut in [8, 20, 33, 100, png.len() / 2, png.len() - 13] {
        let e = decode(&png[..cut]).expect_err(&format!("cut at {cut}"));
        assert!(matches!(e, ImageError::Broken(_)), "cut at {cut}: {e:?}");
        assert!(e.to_string().starts_with("the image is broken"), "{e}");
    }
    let mut corrupt = png.clone();
    for b in &mut corrupt[200..400] {
        *b ^= 0x5a;
    }
    assert!(matches!(decode(&corrupt), Err(ImageError::Broken(_))));

    let jpg = std::fs::read(STARRY).unwrap();
    assert!(matches!(decode(&jpg[..4]), Err(ImageError::Broken(_))));
    // A JPEG whose header survives but whose data is cut must error or decode, never panic.
    let _ = decode(&jpg[..jpg.len() / 3]);
}

/// A PNG chunk: length, type, data, CRC-32 over type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = 0xffff_ffffu32;
    for &b in kind.iter().chain(data) {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

#[test]
fn zero_size_png_is_named_as_such() {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&0u32.to_be_bytes());
    ihdr.extend_from_slice(&7u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IEND", &[]));
    let e = decode(&png).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::ZeroSize {
                width: 0,
                height: 7
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "the image has zero size (0x7)");
}

/// A big-endian TIFF block holding only the EXIF orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes()); // first IFD
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// A 16×8 picture: left half red, right half blue, top-left 4×4 corner green.
fn two_halves() -> image::RgbImage {
    image::RgbImage::from_fn(16, 8, |x, y| {
        if x < 4 && y < 4 {
            image::Rgb([0, 255, 0])
        } else if x < 8 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    })
}

fn jpeg_with_orientation(orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .encode_image(&two_halves())
        .unwrap();
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(exif_orientation(orientation));
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn png_with_orientation(orientation: u16) -> Vec<u8> {
    let mut png = Vec::new();
    two_halves()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // eXIf goes before the image data; IHDR is the first chunk (8 + 25 bytes).
    let mut out = png[..33].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_orientation(orientation)));
    out.extend_from_slice(&png[33..]);
    out
}

const RED: [f32; 3] = [1.0, 0.0, 0.0];
const BLUE: [f32; 3] = [0.0, 0.0, 1.0];
const GREEN: [f32; 3] = [0.0, 1.0, 0.0];

#[test]
fn exif_orientation_is_applied() {
    for (format, bytes_of, tol) in [
        ("jpeg", jpeg_with_orientation as fn(u16) -> Vec<u8>, 0.1),
        ("png", png_with_orientation as fn(u16) -> Vec<u8>, 0.0),
    ] {
        // 1: as stored.
        let img = decode(&bytes_of(1)).unwrap();
        assert_eq!((img.width, img.height), (16, 8), "{format}");
        assert!(
            close(pixel(&img, 1, 1), GREEN, tol) && close(pixel(&img, 5, 6), RED, tol),
            "{format}"
        );
        // 6: rotate 90° clockwise to display: the left side comes to the top.
        let img = decode(&bytes_of(6)).unwrap();
        assert_eq!((img.width, img.height), (8, 16), "{format}");
        assert!(
            close(pixel(&img, 6, 1), GREEN, tol),
            "{format}: {:?}",
            pixel(&img, 6, 1)
        );
        assert!(close(pixel(&img, 1, 6), RED, tol), "{format}");
        assert!(close(pixel(&img, 4, 12), BLUE, tol), "{format}");
        // 3: rotate 180°.
        let img = decode(&bytes_of(3)).unwrap();
        assert_eq!((img.width, img.height), (16, 8), "{format}");
        assert!(
            close(pixel(&img, 14, 6), GREEN, tol) && close(pixel(&img, 2, 2), BLUE, tol),
            "{format}"
        );
        // 8: rotate 90° counter-clockwise: the left side goes to the bottom.
        let img = decode(&bytes_of(8)).unwrap();
        assert_eq!((img.width, img.height), (8, 16), "{format}");
        assert!(
            close(pixel(&img, 1, 14), GREEN, tol) && close(pixel(&img, 4, 3), BLUE, tol),
            "{format}"
        );
    }
}

#[test]
fn resize_keeps_the_aspect_ratio() {
    let cat = imageio::load(CHELSEA.as_ref()).unwrap();
    let small = resize_longest(&cat, 128);
    assert_eq!((small.width, small.height), (128, 85));
    assert_eq!(small.rgb.len(), 128 * 85 * 3);
    assert!(small.rgb.iter().all(|v| (0.0..=1.0).contains(v)));
    let tall = image_from(30, 90, |_, _| [0.5; 3]);
    assert_eq!(imageio::size_for_longest(30, 90, 45), (15, 45));
    assert_eq!(
        (
            resize_longest(&tall, 45).width,
            resize_longest(&tall, 45).height
        ),
        (15, 45)
    );
    // Thin images keep at least one pixel per side.
    assert_eq!(imageio::size_for_longest(1000, 1, 10), (10, 1));
    assert_eq!(imageio::size_for_longest(3, 1000, 16), (1, 16));
    assert_eq!(imageio::size_for_longest(7, 5, 7), (7, 5));
    // Upscaling too.
    let up = resize_longest(&image_from(10, 5, |_, _| [0.25, 0.5, 0.75]), 40);
    assert_eq!((up.width, up.height), (40, 20));
    assert!(up
        .rgb
        .chunks(3)
        .all(|p| close([p[0], p[1], p[2]], [0.25, 0.5, 0.75], 1e-5)));
}

#[test]
fn an_image_already_at_size_is_used_pixel_for_pixel() {
    let cat = imageio::load(CHELSEA.as_ref()).unwrap();
    assert_eq!(resize_longest(&cat, 451), cat);
    let odd = image_from(7, 5, |x, y| [x as f32 / 7.0, y as f32 / 5.0, 0.3]);
    assert_eq!(resize_longest(&odd, 7), odd);
    assert_eq!(resize_to(&odd, 7, 5), odd);
}

#[test]
fn downscaling_is_antialiased() {
    // A 1-pixel checkerboard shrunk 4x must come out mid-grey, not aliased to black or white.
    let board = image_from(64, 64, |x, y| [((x + y) % 2) as f32; 3]);
    let small = resize_longest(&board, 16);
    for v in &small.rgb {
        assert!((v - 0.5).abs() < 0.05, "{v}");
    }
    // A sharp edge keeps its sides and stays within [0,1] (Lanczos ringing is clamped).
    let edge = image_from(64, 8, |x, _| if x < 32 { [0.0; 3] } else { [1.0; 3] });
    let small = resize_to(&edge, 16, 2);
    assert!(small.rgb.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(pixel(&small, 2, 0)[0] < 0.02 && pixel(&small, 13, 0)[0] > 0.98);
}

#[test]
fn resize_to_an_exact_size() {
    let cat = imageio::load(CHELSEA.as_ref()).unwrap();
    let r = resize_to(&cat, 33, 17);
    assert_eq!((r.width, r.height, r.rgb.len()), (33, 17, 33 * 17 * 3));
}

#[test]
fn png_output_round_trips() {
    let img = image_from(7, 5, |x, y| {
        [x as f32 / 6.0, y as f32 / 4.0, ((x * y) % 3) as f32 / 2.0]
    });
    let png = img.encode_png().unwrap();
    let back = decode(&png).unwrap();
    assert_eq!((back.width, back.height), (7, 5));
    for (a, b) in img.rgb.iter().zip(&back.rgb) {
        assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6, "{a} vs {b}");
    }
    // Out-of-range and NaN values are clamped, not wrapped.
    let wild = Image::new(1, 1, vec![-3.0, 7.0, f32::NAN]).unwrap();
    assert_eq!(wild.to_rgba8(), vec![0, 255, 0, 255]);
    // An inconsistent Image (public fields) is an error, not a panic.
    let bad = Image {
        width: 3,
        height: 3,
        rgb: vec![0.0; 5],
    };
    assert!(matches!(
        bad.encode_png(),
        Err(ImageError::BadBuffer { .. })
    ));

    let path = temp_path("round.png");
    img.save_png(&path).unwrap();
    assert_eq!(imageio::load(&path).unwrap(), back);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn file_errors_name_the_path() {
    let e = imageio::load("/no/such/dir/cat.png".as_ref())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/no/such/dir/cat.png: "), "{e}");
    let dir = temp_path("");
    assert!(imageio::load(&dir).is_err());
    let text = temp_path("notes.png");
    std::fs::write(&text, "not really a png").unwrap();
    assert_eq!(
        imageio::load(&text).unwrap_err().to_string(),
        format!("{}: not a PNG or JPEG image", text.display())
    );
    let img = image_from(2, 2, |_, _| [0.0; 3]);
    let e = img
        .save_png("/no/such/dir/out.png".as_ref())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/no/such/dir/out.png: "), "{e}");
}
