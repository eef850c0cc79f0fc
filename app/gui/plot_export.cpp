// Plot export: see plot_export.h.
#include "plot_export.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QImage>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QPixmap>
#include <QSaveFile>
#include <QSvgGenerator>

namespace attnscope::app {

namespace {

constexpr double kInchesPerMeter = 39.3700787;
// Vector exports use the logical screen resolution so fonts (sized in points) take the same
// share of the figure as on screen; at 72 dpi they would come out 25% smaller.
constexpr int kVectorDpi = 96;

QString failure(const QString& path, const QString& what) {
  return QStringLiteral("%1: %2").arg(path, what);
}

// Draws the plot as vectors onto an already-begun paint device.
void paintVector(QCustomPlot& plot, QPaintDevice& device, int width, int height) {
  QCPPainter painter;
  painter.begin(&device);
  painter.setMode(QCPPainter::pmVectorized);
  painter.setMode(QCPPainter::pmNoCaching);
  painter.setWindow(0, 0, width, height);
  plot.toPainter(&painter, width, height);
  painter.end();
}

}  // namespace

std::optional<PlotFormat> plotFormatForPath(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("png")) return PlotFormat::Png;
  if (suffix == QLatin1String("svg")) return PlotFormat::Svg;
  if (suffix == QLatin1String("pdf")) return PlotFormat::Pdf;
  return std::nullopt;
}

namespace {

// How a figure draws itself: as an image (PNG) or as vectors onto a begun device (SVG/PDF).
struct FigureRenderer {
  std::function<QImage(int width, int height, double scale)> raster;
  std::function<void(QPaintDevice& device, int width, int height)> vector;
};

QString exportFigure(const FigureRenderer& renderer, int width, int height, const QString& path,
                     const PlotExportOptions& options) {
  const std::optional<PlotFormat> format = plotFormatForPath(path);
  if (!format) return failure(path, QStringLiteral("expected a .png, .svg or .pdf file name"));
  if (width <= 0 || height <= 0) return failure(path, QStringLiteral("the figure has no size"));

  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    return failure(path, QStringLiteral("cannot write (%1)").arg(file.errorString()));
  }
  switch (*format) {
    case PlotFormat::Png: {
      const double scale = options.scale > 0 ? options.scale : 1.0;
      QImage image = renderer.raster(width, height, scale);
      if (image.isNull()) {
        file.cancelWriting();
        return failure(path, QStringLiteral("could not render the figure"));
      }
      const int dotsPerMeter = qRound(options.dpi * kInchesPerMeter);
      image.setDotsPerMeterX(dotsPerMeter);
      image.setDotsPerMeterY(dotsPerMeter);
      if (!image.save(&file, "PNG")) {
        file.cancelWriting();
        return failure(path, QStringLiteral("PNG encoding failed"));
      }
      break;
    }
    case PlotFormat::Svg: {
      QSvgGenerator generator;
      generator.setOutputDevice(&file);
      generator.setSize(QSize(width, height));
      generator.setViewBox(QRect(0, 0, width, height));
      generator.setResolution(kVectorDpi);
      generator.setTitle(options.title);
      generator.setDescription(QStringLiteral("attnscope figure"));
      renderer.vector(generator, width, height);
      break;
    }
    case PlotFormat::Pdf: {
      QPdfWriter writer(&file);
      writer.setCreator(QStringLiteral("attnscope"));
      writer.setTitle(options.title);
      // One device unit per logical pixel, a page exactly the figure's size, no margins.
      writer.setResolution(kVectorDpi);
      const double pointsPerPixel = 72.0 / kVectorDpi;
      writer.setPageSize(QPageSize(QSizeF(width * pointsPerPixel, height * pointsPerPixel),
                                   QPageSize::Point, QString(), QPageSize::ExactMatch));
      writer.setPageMargins(QMarginsF(0, 0, 0, 0));
      renderer.vector(writer, width, height);
      break;
    }
  }
  if (file.error() != QFileDevice::NoError) {
    const QString reason = file.errorString();
    file.cancelWriting();
    return failure(path, QStringLiteral("cannot write (%1)").arg(reason));
  }
  if (!file.commit()) {
    return failure(path, QStringLiteral("cannot write (%1)").arg(file.errorString()));
  }
  return {};
}

}  // namespace

QString exportPlot(QCustomPlot& plot, const QString& path, const PlotExportOptions& options) {
  const int width = options.width > 0 ? options.width : plot.width();
  const int height = options.height > 0 ? options.height : plot.height();
  FigureRenderer renderer;
  renderer.raster = [&plot](int w, int h, double scale) {
    return plot.toPixmap(w, h, scale).toImage();
  };
  renderer.vector = [&plot](QPaintDevice& device, int w, int h) {
    paintVector(plot, device, w, h);
  };
  return exportFigure(renderer, width, height, path, options);
}

QString exportPainted(const std::function<void(QPainter&, const QSize&)>& paint, QSize size,
                      const QString& path, const PlotExportOptions& options) {
  const int width = options.width > 0 ? options.width : size.width();
  const int height = options.height > 0 ? options.height : size.height();
  FigureRenderer renderer;
  renderer.raster = [&paint](int w, int h, double scale) {
    QImage image(qRound(w * scale), qRound(h * scale), QImage::Format_ARGB32_Premultiplied);
    if (image.isNull()) return image;
    image.setDevicePixelRatio(scale);
    image.fill(Qt::transparent);
    QPainter painter(&image);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setRenderHint(QPainter::TextAntialiasing);
    paint(painter, QSize(w, h));
    painter.end();
    return image;
  };
  renderer.vector = [&paint](QPaintDevice& device, int w, int h) {
    QPainter painter;
    painter.begin(&device);
    painter.setWindow(0, 0, w, h);
    painter.setRenderHint(QPainter::Antialiasing);
    paint(painter, QSize(w, h));
    painter.end();
  };
  return exportFigure(renderer, width, height, path, options);
}

}  // namespace attnscope::app
