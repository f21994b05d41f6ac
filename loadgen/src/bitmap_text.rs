//! A plotters drawing backend: the bitmap backend with its text drawn in the public-domain 8×8
//! bitmap font of `font8x8`. plotters draws text through a font implementation of its own
//! (system fonts, or a TrueType file and a rasterizer); this one needs neither.

use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    text_anchor::{HPos, VPos},
};

/// The bitmap backend with its text drawn in the 8×8 font (at twice its size for text of 12 px
/// or more); everything else is passed through.
pub struct BitmapText<'a>(pub BitMapBackend<'a>);

impl BitmapText<'_> {
    fn scale<S: BackendTextStyle>(style: &S) -> i32 {
        if style.size() >= 12.0 { 2 } else { 1 }
    }
}

impl<'a> DrawingBackend for BitmapText<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let scale = Self::scale(style) as u32;
        Ok((text.chars().count() as u32 * 8 * scale, 8 * scale))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        (x, y): BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let scale = Self::scale(style);
        let (w, h) = (text.chars().count() as i32 * 8 * scale, 8 * scale);
        let anchor = style.anchor();
        let x = match anchor.h_pos {
            HPos::Left => x,
            HPos::Center => x - w / 2,
            HPos::Right => x - w,
        };
        let y = match anchor.v_pos {
            VPos::Top => y,
            VPos::Center => y - h / 2,
            VPos::Bottom => y - h,
        };
        let color = style.color();
        for (i, c) in text.chars().enumerate() {
            // ASCII only; anything else is drawn as '?'.
            let glyph = font8x8::legacy::BASIC_LEGACY[if c.is_ascii() { c as usize } else { '?' as usize }];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        let (px, py) = (x + (i as i32 * 8 + col) * scale, y + row as i32 * scale);
                        for (dx, dy) in (0..scale).flat_map(|dx| (0..scale).map(move |dy| (dx, dy))) {
                            self.0.draw_pixel((px + dx, py + dy), color)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
