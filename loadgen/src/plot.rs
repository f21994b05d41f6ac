//! The bench's plot: throughput and p99 latency against calls in flight, one line per target,
//! as a PNG, drawn with plotters on its bitmap backend, its text in an 8×8 bitmap font
//! (`bitmap_text.rs`), so no font file, system font or font rasterizer is needed.

use std::path::Path;

use plotters::prelude::*;

use crate::bitmap_text::BitmapText;

const SIZE: (u32, u32) = (960, 400);
const COLORS: [RGBColor; 3] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44)];

/// One line: a label and its points (calls in flight, calls/s, p99 ms).
pub struct Line {
    pub label: String,
    pub points: Vec<(usize, f64, f64)>,
}

/// Which figure of a point a panel shows.
type Measure = fn(&(usize, f64, f64)) -> f64;

/// Writes the plot to `path` as a PNG.
pub fn write(path: &Path, title: &str, lines: &[Line]) -> Result<(), String> {
    let (w, h) = SIZE;
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    draw(&mut pixels, title, lines).map_err(|e| format!("drawing the plot: {e}"))?;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Text sizes: titles in the font at twice its size, labels at its size (see `bitmap_text.rs`).
const TITLE: (&str, u32) = ("sans-serif", 16);
const LABEL: (&str, u32) = ("sans-serif", 8);
const LEGEND_HEIGHT: u32 = 28;

fn draw(pixels: &mut [u8], title: &str, lines: &[Line]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitmapText(BitMapBackend::with_buffer(pixels, SIZE)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, TITLE)?;
    let (charts, legend) = root.split_vertically(root.dim_in_pixel().1 - LEGEND_HEIGHT);
    let (left, right) = charts.split_horizontally(SIZE.0 / 2);
    // x: log2 of calls in flight, labelled with the count itself.
    let max_in_flight = lines.iter().flat_map(|l| &l.points).map(|p| p.0).max().unwrap_or(1);
    let x_max = (max_in_flight.max(2) as f64).log2();
    let panels: [(_, _, Measure); 2] = [(&left, "calls/s", |p| p.1), (&right, "p99 latency, ms", |p| p.2)];
    for (area, caption, value) in panels {
        let y_max = lines
            .iter()
            .flat_map(|l| &l.points)
            .map(value)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, TITLE)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("calls in flight")
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
            .y_label_formatter(&|y| match y_max {
                ..10.0 => format!("{y:.1}"),
                ..10_000.0 => format!("{y:.0}"),
                _ => format!("{:.0}k", y / 1000.0),
            })
            .label_style(LABEL)
            .axis_desc_style(LABEL)
            .draw()?;
        for (line, color) in lines.iter().zip(COLORS) {
            let points: Vec<(f64, f64)> = line.points.iter().map(|p| ((p.0 as f64).log2(), value(p))).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    // One legend for both panels, in a row below them.
    let mut x = 64;
    for (line, color) in lines.iter().zip(COLORS) {
        legend.draw(&PathElement::new([(x, 10), (x + 24, 10)], color.stroke_width(2)))?;
        legend.draw(&Text::new(line.label.as_str(), (x + 32, 6), LABEL))?;
        x += 32 + line.label.len() as i32 * 8 + 48;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let lines: Vec<Line> = [("HTTP 2026-07-28 (stateless)", 1.0), ("stdio 2025-11-25", 2.5)]
            .into_iter()
            .map(|(label, k)| Line {
                label: label.into(),
                points: [1, 16, 64, 256]
                    .map(|c| (c, k * 20_000.0 * (c as f64).ln_1p(), k * c as f64 / 10.0))
                    .into(),
            })
            .collect();
        let path = std::env::temp_dir().join(format!("loadgen-plot-{}.png", std::process::id()));
        write(&path, "server: a test plot", &lines).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        if std::env::var_os("KEEP_PLOT").is_none() {
            std::fs::remove_file(&path).unwrap();
        } else {
            eprintln!("{}", path.display());
        }
    }
}
