// Figure export dialogs: see figure_exporter.h.
#include "figure_exporter.h"

#include <QCheckBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>

#include "figure_view.h"

namespace attnscope::app {

namespace {

constexpr int kMinLaidOutSize = 100;  // below this a widget was never shown: use the default

QString lastDir(const QString& key) {
  const QString dir = QSettings().value(key).toString();
  return dir.isEmpty() ? QDir::homePath() : dir;
}

// Adds the extension of the chosen filter when the name has none of `extensions`.
QString withExtension(QString path, const QString& filter, const QStringList& extensions) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (extensions.contains(suffix)) return path;
  for (const QString& ext : extensions) {
    if (filter.contains(QStringLiteral("*.") + ext)) return path + QLatin1Char('.') + ext;
  }
  return path + QLatin1Char('.') + extensions.value(0);
}

}  // namespace

PlotExportOptions optionsForView(const FigureView& view, PlotExportOptions options) {
  if (options.width <= 0 || options.height <= 0) {
    const bool laidOut =
        view.width() >= kMinLaidOutSize && view.height() >= kMinLaidOutSize && view.isVisible();
    options.width = laidOut ? view.width() : kDefaultFigureWidth;
    options.height = laidOut ? view.height() : kDefaultFigureHeight;
  }
  if (options.title.isEmpty()) options.title = view.figureName();
  return options;
}

ExportAllResult exportAllFigures(const QList<FigureView*>& views, const QString& folder,
                                 const QStringList& formats, const PlotExportOptions& options) {
  ExportAllResult result;
  if (!QFileInfo(folder).isDir()) {
    result.errors << QStringLiteral("%1: expected an existing folder").arg(folder);
    return result;
  }
  for (FigureView* view : views) {
    if (!view) continue;
    if (!view->hasFigure()) {
      result.skipped << view->viewTitle();
      continue;
    }
    const PlotExportOptions viewOptions = optionsForView(*view, options);
    for (const QString& format : formats) {
      const QString path = QDir(folder).filePath(FigureView::figureFileStem(view->figureName()) +
                                                 QLatin1Char('.') + format);
      const QString error = view->exportFigure(path, viewOptions);
      if (error.isEmpty()) {
        result.written << path;
      } else {
        result.errors << error;
      }
    }
  }
  return result;
}

FigureExporter::FigureExporter(QWidget* dialogParent)
    : QObject(dialogParent), m_parent(dialogParent) {}

void FigureExporter::exportFigure(FigureView* view) {
  if (!view || !view->hasFigure()) {
    emit failed(tr("Nothing to export"),
                tr("%1: there is no figure to export yet (run a prompt first)")
                    .arg(view ? view->viewTitle() : tr("view")));
    return;
  }
  const QString key = QStringLiteral("paths/lastExportDir");
  QString filter;
  QString path = QFileDialog::getSaveFileName(
      m_parent, tr("Export figure"),
      QDir(lastDir(key))
          .filePath(FigureView::figureFileStem(view->figureName()) + QStringLiteral(".png")),
      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"), &filter);
  if (path.isEmpty()) return;
  path = withExtension(path, filter,
                       {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")});
  QSettings().setValue(key, QFileInfo(path).absolutePath());
  PlotExportOptions options;
  if (plotFormatForPath(path) == PlotFormat::Png) {
    bool ok = false;
    const int dpi = QInputDialog::getInt(
        m_parent, tr("PNG resolution"), tr("Dots per inch (96 = screen size):"),
        QSettings().value(QStringLiteral("export/dpi"), 192).toInt(), 48, 1200, 24, &ok);
    if (!ok) return;
    QSettings().setValue(QStringLiteral("export/dpi"), dpi);
    options.dpi = dpi;
    options.scale = dpi / 96.0;
  }
  const QString error = view->exportFigure(path, optionsForView(*view, options));
  if (error.isEmpty()) {
    emit succeeded(tr("Exported %1").arg(QDir::toNativeSeparators(path)));
  } else {
    emit failed(tr("Export failed"), error);
  }
}

void FigureExporter::exportData(FigureView* view) {
  if (!view || !view->hasFigure() || view->dataFormats().isEmpty()) {
    emit failed(
        tr("Nothing to export"),
        tr("%1: there is no data to export yet").arg(view ? view->viewTitle() : tr("view")));
    return;
  }
  const QStringList formats = view->dataFormats();
  QStringList filters;
  for (const QString& f : formats) {
    filters << QStringLiteral("%1 (*.%2)").arg(f.toUpper(), f);
  }
  const QString key = QStringLiteral("paths/lastDataDir");
  QString filter;
  QString path =
      QFileDialog::getSaveFileName(m_parent, tr("Export data"),
                                   QDir(lastDir(key))
                                       .filePath(FigureView::figureFileStem(view->figureName()) +
                                                 QLatin1Char('.') + formats.first()),
                                   filters.join(QStringLiteral(";;")), &filter);
  if (path.isEmpty()) return;
  path = withExtension(path, filter, formats);
  QSettings().setValue(key, QFileInfo(path).absolutePath());
  const QString error = view->exportData(path);
  if (error.isEmpty()) {
    emit succeeded(tr("Exported data to %1").arg(QDir::toNativeSeparators(path)));
  } else {
    emit failed(tr("Export failed"), error);
  }
}

void FigureExporter::exportAll(const QList<FigureView*>& views) {
  QDialog dialog(m_parent);
  dialog.setWindowTitle(tr("Export all figures"));
  auto* form = new QFormLayout(&dialog);
  auto* folder = new QLineEdit(lastDir(QStringLiteral("paths/lastExportAllDir")), &dialog);
  auto* browse = new QPushButton(tr("Browse\u2026"), &dialog);
  auto* folderRow = new QHBoxLayout;
  folderRow->addWidget(folder, 1);
  folderRow->addWidget(browse);
  form->addRow(tr("Folder:"), folderRow);
  connect(browse, &QPushButton::clicked, &dialog, [&] {
    const QString dir =
        QFileDialog::getExistingDirectory(&dialog, tr("Export folder"), folder->text());
    if (!dir.isEmpty()) folder->setText(dir);
  });
  QSettings settings;
  auto* png = new QCheckBox(QStringLiteral("PNG"), &dialog);
  auto* svg = new QCheckBox(QStringLiteral("SVG"), &dialog);
  auto* pdf = new QCheckBox(QStringLiteral("PDF"), &dialog);
  png->setChecked(settings.value(QStringLiteral("export/allPng"), true).toBool());
  svg->setChecked(settings.value(QStringLiteral("export/allSvg"), false).toBool());
  pdf->setChecked(settings.value(QStringLiteral("export/allPdf"), true).toBool());
  auto* formatsRow = new QHBoxLayout;
  formatsRow->addWidget(png);
  formatsRow->addWidget(svg);
  formatsRow->addWidget(pdf);
  formatsRow->addStretch(1);
  form->addRow(tr("Formats:"), formatsRow);
  auto* dpi = new QSpinBox(&dialog);
  dpi->setRange(48, 1200);
  dpi->setSingleStep(24);
  dpi->setValue(settings.value(QStringLiteral("export/dpi"), 192).toInt());
  dpi->setSuffix(tr(" dpi"));
  form->addRow(tr("PNG resolution:"), dpi);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
  form->addRow(buttons);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  if (dialog.exec() != QDialog::Accepted) return;

  QStringList formats;
  if (png->isChecked()) formats << QStringLiteral("png");
  if (svg->isChecked()) formats << QStringLiteral("svg");
  if (pdf->isChecked()) formats << QStringLiteral("pdf");
  settings.setValue(QStringLiteral("export/allPng"), png->isChecked());
  settings.setValue(QStringLiteral("export/allSvg"), svg->isChecked());
  settings.setValue(QStringLiteral("export/allPdf"), pdf->isChecked());
  settings.setValue(QStringLiteral("export/dpi"), dpi->value());
  if (formats.isEmpty()) {
    emit failed(tr("Export failed"), tr("export all: choose at least one format"));
    return;
  }
  const QString dir = folder->text();
  QDir().mkpath(dir);
  settings.setValue(QStringLiteral("paths/lastExportAllDir"), dir);
  PlotExportOptions options;
  options.dpi = dpi->value();
  options.scale = dpi->value() / 96.0;
  const ExportAllResult result = exportAllFigures(views, dir, formats, options);
  if (!result.errors.isEmpty()) {
    emit failed(tr("Some exports failed"), result.errors.join(QLatin1Char('\n')));
  }
  if (!result.written.isEmpty()) {
    QString message = tr("Exported %n file(s) to %1", "", static_cast<int>(result.written.size()))
                          .arg(QDir::toNativeSeparators(dir));
    if (!result.skipped.isEmpty()) {
      message += tr("; skipped (nothing to show yet; open the tab once): %1")
                     .arg(result.skipped.join(QStringLiteral(", ")));
    }
    emit succeeded(message);
  } else if (result.errors.isEmpty()) {
    emit failed(tr("Nothing to export"),
                tr("export all: no view has a figure yet (run a prompt first)"));
  }
}

}  // namespace attnscope::app
