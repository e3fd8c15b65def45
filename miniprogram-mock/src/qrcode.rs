//! Rendering of stand-in mini-program codes: real, decodable PNG files whose
//! pattern is derived from the scene and page, so distinct inputs give
//! distinct images while the same input always gives the same bytes.
//!
//! The pattern only looks like a code; it does not encode the scene.

/// Modules per side of the data grid.
const GRID: u32 = 25;
/// Quiet-zone modules around the grid.
const MARGIN: u32 = 2;
/// Side of the corner finder squares, in modules.
const FINDER: u32 = 7;

/// Visual options of `getwxacodeunlimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) width: u32,
    /// Foreground colour; `None` renders greyscale.
    pub(crate) line_color: Option<[u8; 3]>,
    /// Transparent background.
    pub(crate) hyaline: bool,
}

/// Encodes the code for `scene` and `page` as a `width`×`width` PNG.
pub(crate) fn render(scene: &str, page: &str, style: Style) -> Result<Vec<u8>, png::EncodingError> {
    let seed = fnv1a(scene.as_bytes()) ^ fnv1a(page.as_bytes()).rotate_left(29);
    let modules = module_grid(seed);

    let (color, fg, bg): (png::ColorType, Vec<u8>, Vec<u8>) =
        match (style.line_color, style.hyaline) {
            (None, false) => (png::ColorType::Grayscale, vec![0], vec![255]),
            (None, true) => (png::ColorType::GrayscaleAlpha, vec![0, 255], vec![255, 0]),
            (Some([r, g, b]), false) => (png::ColorType::Rgb, vec![r, g, b], vec![255, 255, 255]),
            (Some([r, g, b]), true) => (
                png::ColorType::Rgba,
                vec![r, g, b, 255],
                vec![255, 255, 255, 0],
            ),
        };

    let width = style.width;
    let side = GRID + 2 * MARGIN;
    let mut pixels = Vec::with_capacity((width * width) as usize * fg.len());
    for y in 0..width {
        let my = y * side / width;
        for x in 0..width {
            let mx = x * side / width;
            let dark = match (mx.checked_sub(MARGIN), my.checked_sub(MARGIN)) {
                (Some(gx), Some(gy)) if gx < GRID && gy < GRID => {
                    modules[(gy * GRID + gx) as usize]
                }
                _ => false,
            };
            pixels.extend_from_slice(if dark { &fg } else { &bg });
        }
    }

    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, width);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

/// A dark colour picked from the input, for `auto_color`.
pub(crate) fn auto_color(scene: &str, page: &str) -> [u8; 3] {
    let h = fnv1a(scene.as_bytes()) ^ fnv1a(page.as_bytes());
    // Halving each channel keeps the code dark enough to read on white.
    [
        (h & 0xff) as u8 / 2,
        ((h >> 8) & 0xff) as u8 / 2,
        ((h >> 16) & 0xff) as u8 / 2,
    ]
}

/// Dark/light flags of the GRID×GRID modules: three finder squares in the
/// corners like a QR code, pseudo-random data elsewhere.
fn module_grid(seed: u64) -> Vec<bool> {
    let mut rng = SplitMix64(seed);
    let mut bits = 0u64;
    let mut left = 0u32;
    let mut modules = Vec::with_capacity((GRID * GRID) as usize);
    for y in 0..GRID {
        for x in 0..GRID {
            let dark = match finder_cell(x, y) {
                Some(dark) => dark,
                None => {
                    if left == 0 {
                        bits = rng.next();
                        left = 64;
                    }
                    left -= 1;
                    (bits >> left) & 1 == 1
                }
            };
            modules.push(dark);
        }
    }
    modules
}

/// Whether (x, y) belongs to a finder square (including its light
/// separator), and if so whether it is dark.
fn finder_cell(x: u32, y: u32) -> Option<bool> {
    let far = GRID - FINDER;
    let local = |v: u32| {
        if v <= FINDER {
            Some(v)
        } else if v + 1 >= far {
            Some(GRID - 1 - v)
        } else {
            None
        }
    };
    let (lx, ly) = (local(x)?, local(y)?);
    // The bottom-right corner has no finder square in a QR code.
    if x > FINDER && y > FINDER {
        return None;
    }
    if lx == FINDER || ly == FINDER {
        return Some(false);
    }
    let ring = lx.min(ly).min(FINDER - 1 - lx).min(FINDER - 1 - ly);
    Some(ring != 1)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PLAIN: Style = Style {
        width: 280,
        line_color: None,
        hyaline: false,
    };

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(bytes).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn renders_a_square_png_of_the_requested_width() {
        let (info, pixels) = decode(&render("a=1", "pages/index/index", PLAIN).unwrap());
        assert_eq!((info.width, info.height), (280, 280));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert!(pixels.contains(&0) && pixels.contains(&255));
    }

    #[test]
    fn same_input_gives_same_image_and_other_scenes_differ() {
        let a = render("a=1", "", PLAIN).unwrap();
        assert_eq!(a, render("a=1", "", PLAIN).unwrap());
        assert_ne!(a, render("a=2", "", PLAIN).unwrap());
        assert_ne!(a, render("a=1", "pages/x", PLAIN).unwrap());
    }

    #[test]
    fn coloured_transparent_codes_use_rgba() {
        let style = Style {
            width: 300,
            line_color: Some([10, 20, 30]),
            hyaline: true,
        };
        let (info, _) = decode(&render("x", "", style).unwrap());
        assert_eq!(info.color_type, png::ColorType::Rgba);
    }
}
