// The attnscope main window: menus, the model summary and prompt on the left, the attention
// heatmap on the right, status bar. Layout and wiring only: state and work live in
// SessionController, drawing in the views.
#pragma once

#include <QMainWindow>

#include "app_types.h"

class QAction;
class QCheckBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QSplitter;

namespace attnscope::app {

class ErrorPresenter;
class HeatmapView;
class ModelSummaryPanel;
class SessionController;

// The English prompt shipped in resources/prompts/default.txt.
QString defaultPrompt();

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  // backendKind: "cpu" or "cuda". restoreSettings = false ignores saved geometry (scripted runs).
  explicit MainWindow(const QString& backendKind = QStringLiteral("cpu"),
                      bool restoreSettings = true, QWidget* parent = nullptr);
  ~MainWindow() override;

  SessionController* controller() const { return m_controller; }
  ErrorPresenter* errorPresenter() const { return m_errors; }
  HeatmapView* heatmapView() const { return m_heatmap; }
  ModelSummaryPanel* summaryPanel() const { return m_summary; }
  QPlainTextEdit* promptEditor() const { return m_prompt; }
  QSpinBox* layerSpin() const { return m_layerSpin; }
  QSpinBox* headSpin() const { return m_headSpin; }
  QAction* runAction() const { return m_runAction; }
  QAction* cancelAction() const { return m_cancelAction; }
  QAction* exportAction() const { return m_exportAction; }

 public slots:
  void openModel(const QString& path);
  void runCurrentPrompt();
  void selectLayerHead(int layer, int head);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildActions();
  void buildCentralArea();
  void buildStatusBar();
  void connectController();
  void updateActions();
  void showModel(const LoadedModelPtr& model);
  void showResult(const RunResultPtr& result);
  void chooseModelFile();
  void chooseExportFile();
  void showAbout();

  SessionController* m_controller = nullptr;
  ErrorPresenter* m_errors = nullptr;
  bool m_restoreSettings = true;

  QSplitter* m_splitter = nullptr;
  ModelSummaryPanel* m_summary = nullptr;
  QPlainTextEdit* m_prompt = nullptr;
  QSpinBox* m_layerSpin = nullptr;
  QSpinBox* m_headSpin = nullptr;
  QCheckBox* m_logScale = nullptr;
  QPushButton* m_runButton = nullptr;
  QPushButton* m_cancelButton = nullptr;
  HeatmapView* m_heatmap = nullptr;

  QAction* m_openAction = nullptr;
  QAction* m_exportAction = nullptr;
  QAction* m_runAction = nullptr;
  QAction* m_cancelAction = nullptr;

  QLabel* m_deviceLabel = nullptr;
  QLabel* m_loadLabel = nullptr;
  QLabel* m_runLabel = nullptr;
  QLabel* m_tokensLabel = nullptr;
  QProgressBar* m_progress = nullptr;
};

}  // namespace attnscope::app
