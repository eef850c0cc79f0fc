// Atomic export of a QCustomPlot to PNG, SVG or PDF: each file is written to a temporary file in
// the target directory and renamed over the target only when complete, so a failed export never
// damages an existing file.
#pragma once

#include <QSize>
#include <QString>
#include <functional>
#include <optional>

class QCustomPlot;
class QPainter;

namespace attnscope::app {

enum class PlotFormat { Png, Svg, Pdf };

// Format from the file extension (case-insensitive); nullopt for anything else.
std::optional<PlotFormat> plotFormatForPath(const QString& path);

struct PlotExportOptions {
  int width = 0;  // logical size in pixels (points for PDF); 0 = the widget's size
  int height = 0;
  double scale = 2.0;  // PNG only: device pixels per logical pixel
  int dpi = 192;       // PNG only: resolution written into the file header
  QString title;       // SVG/PDF document title
};

// Returns an empty string on success, else "<path>: <what went wrong>".
QString exportPlot(QCustomPlot& plot, const QString& path, const PlotExportOptions& options);

// The same for a custom-painted figure: `paint` draws the figure into a painter whose logical
// size is `size` (device pixels are scaled for PNG; SVG/PDF get vectors). Atomic like
// exportPlot.
QString exportPainted(const std::function<void(QPainter&, const QSize&)>& paint, QSize size,
                      const QString& path, const PlotExportOptions& options);

}  // namespace attnscope::app
