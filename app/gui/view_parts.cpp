// Shared pieces of the figure views: see view_parts.h.
#include "view_parts.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QStackedWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <QWidget>

#include "token_labels.h"

namespace attnscope::app {

QVBoxLayout* newToolbarColumn(QWidget* view, QHBoxLayout** toolbar) {
  auto* column = new QVBoxLayout(view);
  column->setContentsMargins(0, 0, 0, 0);
  column->setSpacing(0);
  *toolbar = new QHBoxLayout;
  (*toolbar)->setContentsMargins(8, 4, 8, 4);
  column->addLayout(*toolbar);
  return column;
}

QLabel* newEmptyStateLabel(QWidget* parent) {
  auto* label = new QLabel(parent);
  label->setAlignment(Qt::AlignCenter);
  label->setWordWrap(true);
  label->setMargin(24);
  return label;
}

QStackedWidget* newFigureStack(QWidget* parent, QLabel** empty) {
  auto* stack = new QStackedWidget(parent);
  *empty = newEmptyStateLabel(stack);
  stack->addWidget(*empty);
  return stack;
}

QTimer* newCoalescingTimer(QObject* parent, std::function<void()> slot) {
  auto* timer = new QTimer(parent);
  timer->setSingleShot(true);
  timer->setInterval(0);
  QObject::connect(timer, &QTimer::timeout, parent, std::move(slot));
  return timer;
}

TracePtr sessionTrace(const SessionDataPtr& session, int index) {
  if (!session || index < 0 || index >= session->traceCount()) return nullptr;
  return session->traces[static_cast<size_t>(index)];
}

QStringList traceTokenLabels(const SessionData& session, const Trace& trace) {
  if (session.tokenLabels.size() == trace.n_tokens()) return session.tokenLabels;
  QStringList labels;
  for (const std::string& text : trace.token_texts) labels << tokenDisplayText(text);
  return labels;
}

PlotExportOptions plotExportOptions(const PlotExportOptions& options, const QWidget& view,
                                    const QWidget& plot, const QString& title) {
  PlotExportOptions o = options;
  if (o.width == view.width() && o.height == view.height()) {
    o.width = plot.width();
    o.height = plot.height();
  }
  if (o.title.isEmpty()) o.title = title;
  return o;
}

std::filesystem::path exportFilePath(const QString& path) {
  return std::filesystem::path(path.toStdU16String());
}

QString exportError(const QString& path, const QString& error) {
  if (error.isEmpty() || error.contains(path)) return error;
  return QStringLiteral("%1: %2").arg(path, error);
}

}  // namespace attnscope::app
