// The attnscope main window: docks for the model summary, the prompt and the variants, the
// token strip at the bottom, the selection bar and one tab per view in the centre, menus
// (File, View, Run, Help), the status bar. Layout and wiring only: state and work live in
// SessionController, the shared selection in SelectionModel, drawing in the views.
#pragma once

#include <QList>
#include <QMainWindow>
#include <vector>

#include "app_types.h"

class QAction;
class QDockWidget;
class QMenu;
class QTabWidget;

namespace attnscope::app {

class AttentionMapView;
class CompareView;
class ErrorPresenter;
class FigureExporter;
class FigureView;
class HeadGridView;
class KvCacheView;
class MapService;
class MasksView;
class MetricsView;
class ModelSummaryPanel;
class PromptPanel;
class QueryGroupsView;
class RecentFiles;
class SelectionBar;
class SelectionModel;
class SessionController;
class StatusPanel;
class ThroughputView;
class TokenStrip;
class VariantsPanel;

// The English prompt shipped in resources/prompts/default.txt.
QString defaultPrompt();

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  // backendKind: "cpu" or "cuda". restoreSettings = false ignores saved geometry, variants and
  // prompt (scripted runs, tests).
  explicit MainWindow(const QString& backendKind = QStringLiteral("cpu"),
                      bool restoreSettings = true, QWidget* parent = nullptr);
  ~MainWindow() override;

  SessionController* controller() const { return m_controller; }
  SelectionModel* selection() const { return m_selection; }
  ErrorPresenter* errorPresenter() const { return m_errors; }
  FigureExporter* exporter() const { return m_exporter; }
  ModelSummaryPanel* summaryPanel() const { return m_summary; }
  PromptPanel* promptPanel() const { return m_prompt; }
  VariantsPanel* variantsPanel() const { return m_variants; }
  SelectionBar* selectionBar() const { return m_selectionBar; }
  StatusPanel* statusPanel() const { return m_status; }
  TokenStrip* tokenStrip() const { return m_tokens; }
  QTabWidget* tabs() const { return m_tabs; }
  // Every exportable view: the tabs in order, then the token strip.
  QList<FigureView*> views() const;
  FigureView* currentView() const;
  HeadGridView* headGrid() const { return m_headGrid; }
  AttentionMapView* attentionMap() const { return m_map; }
  CompareView* compareView() const { return m_compare; }
  KvCacheView* kvCacheView() const { return m_kv; }
  QueryGroupsView* queryGroupsView() const { return m_groups; }
  MasksView* masksView() const { return m_masks; }
  MetricsView* metricsView() const { return m_metrics; }
  ThroughputView* throughputView() const { return m_throughput; }
  QAction* runAction() const { return m_runAction; }
  QAction* cancelAction() const { return m_cancelAction; }
  QAction* exportAction() const { return m_exportAction; }
  QAction* saveAction() const { return m_saveAction; }

  // Whether to ask before discarding unsaved results (off in tests and scripted runs).
  void setConfirmDiscard(bool on) { m_confirmDiscard = on; }

 public slots:
  void openModel(const QString& path);
  void openSession(const QString& dir);
  void saveSessionTo(const QString& dir);
  void runCurrentPrompt();
  // Selects (layer, head) and shows its attention map.
  void showHead(int layer, int head);
  void showView(FigureView* view);

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void buildViews();
  void buildDocks();
  void buildMenus();
  void connectController();
  void restoreSettings();
  void saveSettings();
  void updateActions();
  void showModel(const LoadedModelPtr& model);
  void showSession(const SessionDataPtr& session);
  void chooseModel();
  void chooseSession();
  void saveSession(bool askForName);
  void chooseNeedleTest();
  void chooseSweep();
  void choosePromptFile();
  void openDropped(const QString& path);
  // Asks to save a modified session before it is replaced; false = the user cancelled.
  bool confirmDiscardChanges(const QString& action);
  void showAbout();
  void updateTitle();

  SessionController* m_controller = nullptr;
  SelectionModel* m_selection = nullptr;
  ErrorPresenter* m_errors = nullptr;
  FigureExporter* m_exporter = nullptr;
  bool m_restoreSettings = true;
  bool m_confirmDiscard = true;

  ModelSummaryPanel* m_summary = nullptr;
  PromptPanel* m_prompt = nullptr;
  VariantsPanel* m_variants = nullptr;
  SelectionBar* m_selectionBar = nullptr;
  StatusPanel* m_status = nullptr;
  TokenStrip* m_tokens = nullptr;
  QTabWidget* m_tabs = nullptr;
  QList<QDockWidget*> m_docks;
  std::vector<TracePtr> m_shownTraces;  // the traces the selection's bounds were set for

  HeadGridView* m_headGrid = nullptr;
  AttentionMapView* m_map = nullptr;
  CompareView* m_compare = nullptr;
  KvCacheView* m_kv = nullptr;
  QueryGroupsView* m_groups = nullptr;
  MasksView* m_masks = nullptr;
  MetricsView* m_metrics = nullptr;
  ThroughputView* m_throughput = nullptr;

  QMenu* m_viewMenu = nullptr;
  RecentFiles* m_recentModels = nullptr;
  RecentFiles* m_recentSessions = nullptr;
  QAction* m_openAction = nullptr;
  QAction* m_openSessionAction = nullptr;
  QAction* m_saveAction = nullptr;
  QAction* m_saveAsAction = nullptr;
  QAction* m_exportAction = nullptr;
  QAction* m_exportDataAction = nullptr;
  QAction* m_exportAllAction = nullptr;
  QAction* m_runAction = nullptr;
  QAction* m_cancelAction = nullptr;
  QAction* m_needleAction = nullptr;
  QAction* m_sweepAction = nullptr;
  QAction* m_reanalyseAction = nullptr;
};

}  // namespace attnscope::app
