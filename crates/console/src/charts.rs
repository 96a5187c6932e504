//! Charts as SVG, drawn with plotters: a group's lag over time. The UI
//! shows the SVG as it is and turns it into a PNG for export.

use plotters::prelude::*;

use crate::model::LagPoint;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 280;

/// A line chart of `points` (time in ms, lag in records).
pub fn lag_svg(group_id: &str, points: &[LagPoint]) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, group_id, points) {
        tracing::warn!(%error, "drawing the lag chart failed");
        svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\"><text x=\"16\" y=\"32\">No chart: {}</text></svg>",
            escape(&error.to_string())
        );
    }
    svg
}

fn draw(
    svg: &mut String,
    group_id: &str,
    points: &[LagPoint],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (first, last) = match (points.first(), points.last()) {
        (Some(first), Some(last)) if last.time_ms > first.time_ms => (first.time_ms, last.time_ms),
        (Some(first), _) => (first.time_ms - 1000, first.time_ms + 1000),
        _ => {
            let now = crate::session::now_ms();
            (now - 60_000, now)
        }
    };
    let max_lag = points
        .iter()
        .map(|point| point.lag)
        .max()
        .unwrap_or(0)
        .max(1);
    // Seconds before the newest point, so the axis reads "-60 s ... 0".
    let seconds = |time_ms: i64| (time_ms - last) as f64 / 1000.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Lag of group {group_id}"), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(seconds(first)..0.0, 0i64..max_lag + max_lag / 10 + 1)?;
    chart
        .configure_mesh()
        .x_desc("seconds ago")
        .y_desc("records behind")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points
            .iter()
            .map(|point| (seconds(point.time_ms), point.lag)),
        ShapeStyle::from(&RGBColor(37, 99, 235)).stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_series_becomes_an_svg_line() {
        let points: Vec<LagPoint> = (0..10)
            .map(|index| LagPoint {
                time_ms: 1_700_000_000_000 + index * 1000,
                lag: index * 7,
            })
            .collect();
        let svg = lag_svg("orders-app", &points);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Lag of group orders-app"));
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "a line is drawn"
        );
    }

    #[test]
    fn no_points_is_an_empty_chart_not_an_error() {
        let svg = lag_svg("idle", &[]);
        assert!(svg.starts_with("<svg") && svg.contains("idle"));
    }
}
