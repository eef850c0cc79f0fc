// Small pieces every figure view builds the same way around its figure: the toolbar row, the
// empty-state message
// that replaces the figure, the zero-delay timer that folds a burst of selection signals into one
// refresh, the trace a selection index names and its token labels, export sizes taken from the
// plot rather than the whole view, and export file paths and error texts.
#pragma once

#include <QString>
#include <QStringList>
#include <filesystem>
#include <functional>

#include "app_types.h"
#include "plot_export.h"

class QHBoxLayout;
class QLabel;
class QObject;
class QStackedWidget;
class QTimer;
class QVBoxLayout;
class QWidget;

namespace attnscope::app {

// The view's layout: a column without margins whose first row, `toolbar`, holds the view's
// controls with a little room around them.
QVBoxLayout* newToolbarColumn(QWidget* view, QHBoxLayout** toolbar);
// The centred, word-wrapped message a view shows instead of its figure (no run yet, nothing
// of this kind in the run...).
QLabel* newEmptyStateLabel(QWidget* parent);
// A stack whose page 0 is such a message (`empty`); the view adds its figure as page 1.
QStackedWidget* newFigureStack(QWidget* parent, QLabel** empty);
// A single-shot timer calling `slot` once control returns to the event loop: a burst of
// selection changes costs one refresh.
QTimer* newCoalescingTimer(QObject* parent, std::function<void()> slot);

// session->traces[index], or null when there is no such trace.
TracePtr sessionTrace(const SessionDataPtr& session, int index);
// Display text of every token of `trace`: the session's labels when they are this trace's,
// else made from the trace's own token texts.
QStringList traceTokenLabels(const SessionData& session, const Trace& trace);

// The figure of a view is its plot: an export asked at the whole view's size gets the plot's
// own size instead; an empty title becomes `title`.
PlotExportOptions plotExportOptions(const PlotExportOptions& options, const QWidget& view,
                                    const QWidget& plot, const QString& title);

// A path for core's writers (UTF-8 on every platform).
std::filesystem::path exportFilePath(const QString& path);
// "" for no error; "<path>: <error>" unless the error already names the file.
QString exportError(const QString& path, const QString& error);

}  // namespace attnscope::app
