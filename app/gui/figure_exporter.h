// Figure and data export for the main window: asks for a file name (and the PNG resolution),
// writes through the view's exportFigure / exportData, and reports the result; "Export all
// figures" writes every view that has a figure into one folder in the chosen formats. The
// non-interactive functions are what the dialogs call (and what tests and scripted runs use).
#pragma once

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include "plot_export.h"

class QWidget;

namespace attnscope::app {

class FigureView;

// Size used for a view that has never been laid out (a tab not yet shown).
inline constexpr int kDefaultFigureWidth = 1200;
inline constexpr int kDefaultFigureHeight = 800;

struct ExportAllResult {
  QStringList written;  // file paths
  QStringList errors;   // one message each
  QStringList skipped;  // titles of views that had no figure (e.g. a tab whose maps of a long
                        // prompt are computed only once it is shown)
};

// Writes <folder>/<figureName>.<format> for every view with a figure, for each format in
// `formats` ("png", "svg", "pdf"); views without a figure are skipped. The folder must exist.
ExportAllResult exportAllFigures(const QList<FigureView*>& views, const QString& folder,
                                 const QStringList& formats, const PlotExportOptions& options);

// Options for one view's export: its on-screen size, or the default size when it has none.
PlotExportOptions optionsForView(const FigureView& view, PlotExportOptions options);

class FigureExporter : public QObject {
  Q_OBJECT
 public:
  explicit FigureExporter(QWidget* dialogParent);

  void exportFigure(FigureView* view);
  void exportData(FigureView* view);
  void exportAll(const QList<FigureView*>& views);

 signals:
  void succeeded(const QString& message);
  void failed(const QString& title, const QString& message);

 private:
  QWidget* m_parent;
};

}  // namespace attnscope::app
