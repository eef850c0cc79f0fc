// View base class: see figure_view.h.
#include "figure_view.h"

#include <QContextMenuEvent>
#include <QMenu>
#include <exception>
#include <new>

#include "plot_style.h"

namespace attnscope::app {

FigureView::FigureView(const AppContext& context, QWidget* parent)
    : QWidget(parent), m_context(context) {}

QString FigureView::figureFileStem(const QString& text) {
  QString out;
  for (const QChar c : text) {
    const bool keep = (c >= QLatin1Char('a') && c <= QLatin1Char('z')) ||
                      (c >= QLatin1Char('A') && c <= QLatin1Char('Z')) ||
                      (c >= QLatin1Char('0') && c <= QLatin1Char('9')) || c == QLatin1Char('.') ||
                      c == QLatin1Char('-') || c == QLatin1Char('_');
    if (keep) {
      out += c;
    } else if (!out.endsWith(QLatin1Char('_'))) {
      out += QLatin1Char('_');
    }
  }
  while (out.endsWith(QLatin1Char('_')) || out.endsWith(QLatin1Char('.'))) out.chop(1);
  while (out.startsWith(QLatin1Char('_')) || out.startsWith(QLatin1Char('.'))) out.remove(0, 1);
  if (out.size() > 100) out.truncate(100);
  return out.isEmpty() ? QStringLiteral("figure") : out;
}

void FigureView::contextMenuEvent(QContextMenuEvent* event) {
  QMenu menu(this);
  QAction* figure = menu.addAction(tr("Export figure (PNG/SVG/PDF)\u2026"));
  QAction* dataAction = menu.addAction(
      tr("Export data (%1)\u2026").arg(dataFormats().join(QLatin1Char('/')).toUpper()));
  figure->setEnabled(hasFigure());
  dataAction->setEnabled(hasFigure() && !dataFormats().isEmpty());
  QAction* chosen = menu.exec(event->globalPos());
  if (chosen == figure) emit exportFigureRequested();
  if (chosen == dataAction) emit exportDataRequested();
}

void FigureView::changeEvent(QEvent* event) {
  QWidget::changeEvent(event);
  if (isThemeChange(event)) themeChanged();
}

QString errorText(const std::function<void()>& write) {
  try {
    write();
    return {};
  } catch (const std::bad_alloc&) {
    return QStringLiteral("not enough memory to write the data");
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
}

}  // namespace attnscope::app
