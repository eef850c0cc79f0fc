// Base of every view in the main window's tabs. A view shows one figure of the current session
// for the shared selection and can export it (PNG at a chosen DPI, SVG, PDF) and the data
// behind it (CSV, JSON, NPY). The main window's menu and Ctrl+E act on the current tab; a
// right-click on the view offers the same. Views never compute: they draw core results.
#pragma once

#include <QString>
#include <QStringList>
#include <QWidget>
#include <functional>

#include "app_context.h"
#include "plot_export.h"

class QContextMenuEvent;

namespace attnscope::app {

class MapService;
class SelectionModel;
class SessionController;

// Contract for subclasses: (1) listen to SelectionModel::boundsChanged as well as the
// controller's sessionChanged -- a new session reaches views before the main window resets the
// selection's bounds; (2) never touch maps() or controller() in a destructor -- the main window
// deletes views first, but a view may also be destroyed on its own (tests); (3) ask for maps only
// through maps() (off the GUI thread), on a channel named after the view.
class FigureView : public QWidget {
  Q_OBJECT
 public:
  explicit FigureView(const AppContext& context, QWidget* parent = nullptr);

  // Tab text, e.g. "Attention map".
  virtual QString viewTitle() const = 0;
  // File name stem for the current figure, e.g. "attention_L3_H2_snapkv_budget_128"
  // (only [A-Za-z0-9._-]; figureFileStem() sanitises for you).
  virtual QString figureName() const = 0;
  // Whether there is something to export now.
  virtual bool hasFigure() const = 0;
  // Writes the figure by the path's extension (.png/.svg/.pdf) atomically; returns an empty
  // string on success, else "<path>: <what went wrong>".
  virtual QString exportFigure(const QString& path, const PlotExportOptions& options) = 0;
  // Data formats this view can write ("csv", "json", "npy"), first = the suggested one.
  virtual QStringList dataFormats() const {
    return {QStringLiteral("csv"), QStringLiteral("json")};
  }
  // Writes the data behind the figure by the path's extension; "" or the error.
  virtual QString exportData(const QString& path) = 0;

  // A file-name-safe version of any text ([A-Za-z0-9._-], other runs become '_').
  static QString figureFileStem(const QString& text);

 signals:
  // The figure changed (export actions re-check hasFigure()).
  void figureChanged();
  // From the context menu: the main window asks for a file name and calls export*.
  void exportFigureRequested();
  void exportDataRequested();
  // The user asked to open a head (grid cell or table row clicked): the main window selects it
  // and shows the attention map.
  void headActivated(int layer, int head);

 protected:
  void contextMenuEvent(QContextMenuEvent* event) override;
  // Calls themeChanged() on a palette or style change (the system switched light/dark).
  void changeEvent(QEvent* event) override;
  // Restyle and redraw with the new palette (plot_style.h); default: nothing.
  virtual void themeChanged() {}
  SessionController* controller() const { return m_context.controller; }
  SelectionModel* selection() const { return m_context.selection; }
  MapService* maps() const { return m_context.maps; }
  const AppContext& appContext() const { return m_context; }

 private:
  AppContext m_context;
};

// Runs `write` and turns an attnscope::Error or other exception into "<message>" (empty on
// success): views use it around core's write_table / write_matrix / export_trace_data.
QString errorText(const std::function<void()>& write);

}  // namespace attnscope::app
