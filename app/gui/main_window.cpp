// Main window layout and wiring: see main_window.h.
#include "main_window.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QVBoxLayout>

#include "attention_map_view.h"
#include "compare_view.h"
#include "dropped_path.h"
#include "error_presenter.h"
#include "figure_exporter.h"
#include "head_grid_view.h"
#include "job_runner.h"
#include "kv_cache_view.h"
#include "map_service.h"
#include "masks_view.h"
#include "metrics_view.h"
#include "model_summary_panel.h"
#include "needle_dialog.h"
#include "prompt_panel.h"
#include "query_groups_view.h"
#include "recent_files.h"
#include "selection_bar.h"
#include "selection_model.h"
#include "session_controller.h"
#include "status_panel.h"
#include "sweep_dialog.h"
#include "throughput_view.h"
#include "token_strip.h"
#include "variants_panel.h"

// Resources live in the static attnscope_app_lib; rcc's initialiser must be referenced
// explicitly or the linker drops it. Q_INIT_RESOURCE cannot be used inside a namespace.
static void initAttnscopeResources() {
  Q_INIT_RESOURCE(attnscope);
}

namespace attnscope::app {

namespace {
// Bumped when the dock/tab layout changes, so an old saved state is not applied to a new layout.
constexpr int kWindowStateVersion = 2;
}  // namespace

QString defaultPrompt() {
  initAttnscopeResources();
  QFile file(QStringLiteral(":/prompts/default.txt"));
  if (file.open(QIODevice::ReadOnly)) return QString::fromUtf8(file.readAll()).trimmed();
  return QStringLiteral("The quick brown fox jumps over the lazy dog.");
}

MainWindow::MainWindow(const QString& backendKind, bool restoreSettingsOnStart, QWidget* parent)
    : QMainWindow(parent), m_restoreSettings(restoreSettingsOnStart) {
  initAttnscopeResources();
  setWindowTitle(QStringLiteral("attnscope"));
  setAcceptDrops(true);
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);
  m_controller = new SessionController(backendKind, this);
  m_selection = new SelectionModel(this);
  m_errors = new ErrorPresenter(this);
  m_exporter = new FigureExporter(this);
  buildViews();
  buildDocks();
  buildMenus();
  m_status = new StatusPanel(m_controller, statusBar());
  connectController();
  resize(1500, 940);
  if (m_restoreSettings) restoreSettings();
  updateActions();
  updateTitle();
}

MainWindow::~MainWindow() {
  // Views and panels go first, while the controller and its map service they talk to are still
  // alive (QObject would otherwise delete the controller, created first, before them).
  m_controller->jobs()->cancelAll();
  delete takeCentralWidget();
  qDeleteAll(m_docks);
  m_docks.clear();
}

void MainWindow::buildViews() {
  const AppContext context{m_controller, m_selection, m_controller->maps()};
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(0);
  m_selectionBar = new SelectionBar(m_selection, central);
  layout->addWidget(m_selectionBar);
  m_tabs = new QTabWidget(central);
  m_tabs->setDocumentMode(true);
  layout->addWidget(m_tabs, 1);
  setCentralWidget(central);

  m_headGrid = new HeadGridView(context, m_tabs);
  m_map = new AttentionMapView(context, m_tabs);
  m_compare = new CompareView(context, m_tabs);
  m_kv = new KvCacheView(context, m_tabs);
  m_groups = new QueryGroupsView(context, m_tabs);
  m_masks = new MasksView(context, m_tabs);
  m_metrics = new MetricsView(context, m_tabs);
  m_throughput = new ThroughputView(context, m_tabs);
  m_tokens = new TokenStrip(context, this);
  // Object names: stable ids for scripted runs (--views), settings and tests.
  const QStringList names = {
      QStringLiteral("heads"),   QStringLiteral("map"),        QStringLiteral("compare"),
      QStringLiteral("kv"),      QStringLiteral("groups"),     QStringLiteral("masks"),
      QStringLiteral("metrics"), QStringLiteral("throughput"), QStringLiteral("tokens")};
  const QList<FigureView*> all = views();
  for (int i = 0; i < all.size(); ++i) all[i]->setObjectName(names.at(i));
  for (FigureView* view : all) {
    if (view != m_tokens) m_tabs->addTab(view, view->viewTitle());
    connect(view, &FigureView::exportFigureRequested, this,
            [this, view] { m_exporter->exportFigure(view); });
    connect(view, &FigureView::exportDataRequested, this,
            [this, view] { m_exporter->exportData(view); });
    connect(view, &FigureView::headActivated, this, &MainWindow::showHead);
    connect(view, &FigureView::figureChanged, this, &MainWindow::updateActions);
  }
  connect(m_tabs, &QTabWidget::currentChanged, this, &MainWindow::updateActions);
}

void MainWindow::buildDocks() {
  const auto addDock = [this](const QString& title, const QString& name, QWidget* content,
                              Qt::DockWidgetArea area) {
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(name);
    dock->setWidget(content);
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable |
                      QDockWidget::DockWidgetClosable);
    addDockWidget(area, dock);
    m_docks << dock;
    return dock;
  };
  m_summary = new ModelSummaryPanel(this);
  m_prompt = new PromptPanel(this);
  m_prompt->setText(defaultPrompt());
  m_variants = new VariantsPanel(this);
  // Prompt above, variants below with the model summary tabbed behind them: the summary is read
  // once per model, the other two are edited all day.
  QDockWidget* prompt =
      addDock(tr("Prompt"), QStringLiteral("dock.prompt"), m_prompt, Qt::LeftDockWidgetArea);
  QDockWidget* variants =
      addDock(tr("Variants"), QStringLiteral("dock.variants"), m_variants, Qt::LeftDockWidgetArea);
  QDockWidget* model =
      addDock(tr("Model"), QStringLiteral("dock.model"), m_summary, Qt::LeftDockWidgetArea);
  tabifyDockWidget(variants, model);
  variants->raise();
  QDockWidget* tokens =
      addDock(tr("Tokens"), QStringLiteral("dock.tokens"), m_tokens, Qt::BottomDockWidgetArea);
  resizeDocks({tokens}, {150}, Qt::Vertical);
  resizeDocks({prompt}, {380}, Qt::Horizontal);
  resizeDocks({prompt, variants}, {330, 470}, Qt::Vertical);
  connect(m_prompt, &PromptPanel::errorOccurred, m_errors, &ErrorPresenter::present);
  connect(m_variants, &VariantsPanel::errorOccurred, m_errors, &ErrorPresenter::present);
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  m_openAction = file->addAction(tr("&Open model\u2026"), this, &MainWindow::chooseModel);
  m_openAction->setShortcut(QKeySequence::Open);
  m_openAction->setStatusTip(tr("Open a GGUF file or a Hugging Face model directory"));
  m_recentModels =
      new RecentFiles(QStringLiteral("recent/models"), file->addMenu(tr("Recent &models")), this);
  connect(m_recentModels, &RecentFiles::chosen, this, &MainWindow::openModel);
  file->addSeparator();
  m_openSessionAction =
      file->addAction(tr("Open &session\u2026"), this, &MainWindow::chooseSession);
  m_openSessionAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
  m_openSessionAction->setStatusTip(
      tr("Open a saved session or an `attnscope-cli run` folder (no model needed)"));
  m_recentSessions = new RecentFiles(QStringLiteral("recent/sessions"),
                                     file->addMenu(tr("Recent s&essions")), this);
  connect(m_recentSessions, &RecentFiles::chosen, this, &MainWindow::openSession);
  m_saveAction = file->addAction(tr("&Save session"), this, [this] { saveSession(false); });
  m_saveAction->setShortcut(QKeySequence::Save);
  m_saveAsAction =
      file->addAction(tr("Save session &as\u2026"), this, [this] { saveSession(true); });
  m_saveAsAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
  file->addSeparator();
  file->addAction(tr("&Load prompt from file\u2026"), this, &MainWindow::choosePromptFile);
  QMenu* examples = file->addMenu(tr("E&xample prompts"));
  for (const auto& [title, resource] : PromptPanel::examples()) {
    const QString path = resource;
    examples->addAction(title, this, [this, path] { m_prompt->loadExample(path); });
  }
  file->addSeparator();
  m_exportAction = file->addAction(tr("&Export figure\u2026"), this,
                                   [this] { m_exporter->exportFigure(currentView()); });
  m_exportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
  m_exportDataAction = file->addAction(tr("Export &data\u2026"), this,
                                       [this] { m_exporter->exportData(currentView()); });
  m_exportDataAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
  m_exportAllAction = file->addAction(tr("Export &all figures\u2026"), this,
                                      [this] { m_exporter->exportAll(views()); });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  m_viewMenu = menuBar()->addMenu(tr("&View"));
  for (QDockWidget* dock : m_docks) m_viewMenu->addAction(dock->toggleViewAction());
  m_viewMenu->addSeparator();
  for (int i = 0; i < m_tabs->count(); ++i) {
    QAction* show =
        m_viewMenu->addAction(m_tabs->tabText(i), this, [this, i] { m_tabs->setCurrentIndex(i); });
    if (i < 9) show->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + i)));
  }

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  m_runAction = run->addAction(tr("&Run prompt"), this, &MainWindow::runCurrentPrompt);
  m_runAction->setShortcut(QKeySequence(Qt::Key_F5));
  m_cancelAction = run->addAction(tr("&Cancel"), m_controller, &SessionController::cancel);
  m_cancelAction->setShortcut(QKeySequence(Qt::Key_Escape));
  run->addSeparator();
  m_needleAction = run->addAction(tr("&Needle test\u2026"), this, &MainWindow::chooseNeedleTest);
  m_sweepAction = run->addAction(tr("&Throughput sweep\u2026"), this, &MainWindow::chooseSweep);
  run->addSeparator();
  m_reanalyseAction =
      run->addAction(tr("Re-&analyse heads"), m_controller, &SessionController::reanalyse);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About attnscope"), this, &MainWindow::showAbout);
}

void MainWindow::connectController() {
  SessionController* c = m_controller;
  connect(c, &SessionController::errorOccurred, m_errors, &ErrorPresenter::present);
  connect(c, &SessionController::modelChanged, this, &MainWindow::showModel);
  connect(c, &SessionController::sessionChanged, this, &MainWindow::showSession);
  connect(c, &SessionController::busyChanged, this, &MainWindow::updateActions);
  connect(c, &SessionController::jobStarted, this, [this](const QString&) {
    if (!m_controller->model()) m_summary->setLoading(QString());
  });
  connect(c, &SessionController::jobFinished, this, [this](const QString&, bool, const QString&) {
    m_summary->setModel(m_controller->model());  // a failed load keeps the current model shown
  });
  connect(m_exporter, &FigureExporter::succeeded, this,
          [this](const QString& message) { statusBar()->showMessage(message, 6000); });
  connect(m_exporter, &FigureExporter::failed, m_errors, &ErrorPresenter::present);
}

QList<FigureView*> MainWindow::views() const {
  return {m_headGrid, m_map, m_compare, m_kv, m_groups, m_masks, m_metrics, m_throughput, m_tokens};
}

FigureView* MainWindow::currentView() const {
  return qobject_cast<FigureView*>(m_tabs->currentWidget());
}

void MainWindow::updateActions() {
  const bool busy = m_controller->isBusy();
  const bool haveModel = m_controller->model() != nullptr;
  const SessionDataPtr session = m_controller->session();
  const bool haveResults =
      session && (session->hasRun() || !session->needle.empty() || !session->throughput.empty());
  m_runAction->setEnabled(haveModel && !busy);
  m_needleAction->setEnabled(haveModel && !busy);
  m_sweepAction->setEnabled(haveModel && !busy);
  m_cancelAction->setEnabled(busy || m_controller->isAnalysing());
  m_openAction->setEnabled(!busy);
  m_openSessionAction->setEnabled(!busy);
  m_saveAction->setEnabled(haveResults && !busy);
  m_saveAsAction->setEnabled(haveResults && !busy);
  m_reanalyseAction->setEnabled(session && session->hasRun());
  FigureView* view = currentView();
  m_exportAction->setEnabled(view && view->hasFigure());
  m_exportDataAction->setEnabled(view && view->hasFigure() && !view->dataFormats().isEmpty());
  m_exportAllAction->setEnabled(haveResults);
}

void MainWindow::updateTitle() {
  QString title = QStringLiteral("attnscope");
  const LoadedModelPtr model = m_controller->model();
  if (model && model->model && !model->model->config.name.empty()) {
    title = QString::fromStdString(model->model->config.name) + QStringLiteral(" \u2014 ") + title;
  }
  const SessionDataPtr session = m_controller->session();
  if (session && !session->savedPath.isEmpty()) {
    title = QFileInfo(session->savedPath).fileName() + QStringLiteral(" \u2014 ") + title;
  }
  if (session && session->modified) title = QStringLiteral("* ") + title;
  setWindowTitle(title);
}

void MainWindow::showModel(const LoadedModelPtr& model) {
  m_summary->setModel(model);
  if (model) m_recentModels->add(model->path);
  updateTitle();
  updateActions();
}

void MainWindow::showSession(const SessionDataPtr& session) {
  const int steps = session && session->hasRun() ? session->decodeSteps : 0;
  // Saving or adding a needle/throughput result keeps the traces: the selection stays as it is.
  const std::vector<TracePtr> traces = session ? session->traces : std::vector<TracePtr>();
  if (traces != m_shownTraces || !session) {
    m_shownTraces = traces;
    m_selection->setBounds(session ? session->nLayers() : 0, session ? session->nHeads() : 0,
                           session ? session->traceCount() : 0, session ? session->nTokens() : 0,
                           steps);
  }
  m_selectionBar->setSession(session);
  if (session && !session->savedPath.isEmpty() && !session->modified) {
    m_recentSessions->add(session->savedPath);
  }
  updateTitle();
  updateActions();
}

// ---------------------------------------------------------------------------------------------
// Actions

void MainWindow::openModel(const QString& path) {
  m_controller->openModel(path);
}

void MainWindow::openSession(const QString& dir) {
  if (!confirmDiscardChanges(tr("open another session"))) return;
  m_controller->openSession(dir);
}

void MainWindow::saveSessionTo(const QString& dir) {
  m_controller->saveSession(dir);
}

void MainWindow::runCurrentPrompt() {
  if (!m_runAction->isEnabled()) return;
  if (!confirmDiscardChanges(tr("run again"))) return;
  RunSettings settings;
  settings.prompt = m_prompt->utf8();
  settings.variants = m_variants->variants();
  settings.decodeSteps = m_variants->decodeSteps();
  m_controller->run(settings);
}

void MainWindow::showHead(int layer, int head) {
  m_selection->setLayerHead(layer, head);
  showView(m_map);
}

void MainWindow::showView(FigureView* view) {
  const int index = m_tabs->indexOf(view);
  if (index >= 0) m_tabs->setCurrentIndex(index);
}

void MainWindow::chooseModel() {
  QSettings settings;
  const QString dir = settings.value(QStringLiteral("paths/lastModelDir")).toString();
  const QString chosen =
      QFileDialog::getOpenFileName(this, tr("Open model"), dir,
                                   tr("Model files (*.gguf config.json);;GGUF model (*.gguf);;"
                                      "Hugging Face directory (config.json);;All files (*)"));
  if (chosen.isEmpty()) return;
  const QFileInfo info(chosen);
  settings.setValue(QStringLiteral("paths/lastModelDir"), info.absolutePath());
  QString resolved;
  classifyDroppedPath(chosen, &resolved);  // a file inside an HF directory stands for it
  openModel(info.suffix().compare(QLatin1String("gguf"), Qt::CaseInsensitive) == 0
                ? info.absoluteFilePath()
                : resolved);
}

void MainWindow::chooseSession() {
  QSettings settings;
  const QString dir = QFileDialog::getExistingDirectory(
      this, tr("Open session folder"),
      settings.value(QStringLiteral("paths/lastSessionDir")).toString());
  if (dir.isEmpty()) return;
  settings.setValue(QStringLiteral("paths/lastSessionDir"), QFileInfo(dir).absolutePath());
  openSession(dir);
}

void MainWindow::saveSession(bool askForName) {
  const SessionDataPtr session = m_controller->session();
  QString dir = session ? session->savedPath : QString();
  if (askForName || dir.isEmpty()) {
    QSettings settings;
    const QString base =
        settings.value(QStringLiteral("paths/lastSessionDir"), QDir::homePath()).toString();
    dir = QFileDialog::getSaveFileName(this, tr("Save session as folder"),
                                       QDir(base).filePath(QStringLiteral("attnscope-session")),
                                       QString(), nullptr, QFileDialog::ShowDirsOnly);
    if (dir.isEmpty()) return;
    settings.setValue(QStringLiteral("paths/lastSessionDir"), QFileInfo(dir).absolutePath());
  }
  saveSessionTo(dir);
}

void MainWindow::chooseNeedleTest() {
  const LoadedModelPtr model = m_controller->model();
  if (!model) return;
  NeedleDialog dialog(m_variants->variants(), model->model->config.context_length, this);
  if (dialog.exec() != QDialog::Accepted) return;
  m_controller->runNeedle(dialog.variant(), dialog.options());
  showView(m_metrics);
}

void MainWindow::chooseSweep() {
  const LoadedModelPtr model = m_controller->model();
  if (!model) return;
  SweepDialog dialog(m_variants->variants(), model->model->config.context_length, this);
  if (dialog.exec() != QDialog::Accepted) return;
  m_controller->runSweep(dialog.variants(), dialog.options(), dialog.backendKind());
  showView(m_throughput);
}

void MainWindow::choosePromptFile() {
  QSettings settings;
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Load prompt"), settings.value(QStringLiteral("paths/lastPromptDir")).toString(),
      tr("Text files (*.txt *.md *.text *.prompt);;All files (*)"));
  if (path.isEmpty()) return;
  settings.setValue(QStringLiteral("paths/lastPromptDir"), QFileInfo(path).absolutePath());
  const QString error = m_prompt->loadFile(path);
  if (!error.isEmpty()) m_errors->present(tr("Cannot load prompt"), error);
}

bool MainWindow::confirmDiscardChanges(const QString& action) {
  const SessionDataPtr session = m_controller->session();
  if (!m_confirmDiscard || !m_errors->isEnabled() || !session || !session->modified ||
      !session->hasRun()) {
    return true;
  }
  const auto answer = QMessageBox::question(
      this, tr("Unsaved results"),
      tr("The current results are not saved. Save them before you %1?").arg(action),
      QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
  if (answer == QMessageBox::Cancel) return false;
  if (answer == QMessageBox::Save) {
    saveSession(session->savedPath.isEmpty());
    return false;  // the save runs in the background; the user repeats the action after it
  }
  return true;
}

void MainWindow::openDropped(const QString& path) {
  QString resolved;
  switch (classifyDroppedPath(path, &resolved)) {
    case DroppedKind::Model:
      openModel(resolved);
      break;
    case DroppedKind::Session:
      openSession(resolved);
      break;
    case DroppedKind::Prompt: {
      const QString error = m_prompt->loadFile(resolved);
      if (!error.isEmpty()) m_errors->present(tr("Cannot load prompt"), error);
      break;
    }
    case DroppedKind::Unknown:
      m_errors->present(tr("Cannot open"),
                        tr("%1: expected a .gguf model, a Hugging Face model folder, a session "
                           "folder (index.json) or a prompt text file")
                            .arg(QDir::toNativeSeparators(path)));
      break;
  }
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QList<QUrl> urls = event->mimeData()->urls();
  if (urls.isEmpty() || !urls.first().isLocalFile()) return;
  event->acceptProposedAction();
  openDropped(urls.first().toLocalFile());
}

void MainWindow::showAbout() {
  QMessageBox::about(
      this, tr("About attnscope"),
      tr("<h3>attnscope %1</h3>"
         "<p>Looks inside the attention of small language models: per-head maps, KV-cache "
         "policies, query-head grouping, quality against full attention and speed.</p>"
         "<p>Qt %2 (built with %3) \u00b7 QCustomPlot %4<br>Backend: %5</p>")
          .arg(QStringLiteral(ATTNSCOPE_VERSION), QString::fromLatin1(qVersion()),
               QStringLiteral(QT_VERSION_STR), QStringLiteral(QCUSTOMPLOT_VERSION_STR),
               m_controller->deviceName().isEmpty() ? m_controller->backendKind()
                                                    : m_controller->deviceName()));
}

// ---------------------------------------------------------------------------------------------
// Settings

void MainWindow::restoreSettings() {
  QSettings settings;
  restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
  restoreState(settings.value(QStringLiteral("window/state")).toByteArray(), kWindowStateVersion);
  m_tabs->setCurrentIndex(settings.value(QStringLiteral("window/tab"), 0).toInt());
  if (settings.contains(QStringLiteral("run/variants"))) {
    m_variants->setSpecStrings(settings.value(QStringLiteral("run/variants")).toStringList());
  }
  m_variants->setDecodeSteps(
      settings.value(QStringLiteral("run/decodeSteps"), m_variants->decodeSteps()).toInt());
  const QString prompt = settings.value(QStringLiteral("run/prompt")).toString();
  if (!prompt.isEmpty()) m_prompt->setText(prompt);
}

void MainWindow::saveSettings() {
  QSettings settings;
  settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
  settings.setValue(QStringLiteral("window/state"), saveState(kWindowStateVersion));
  settings.setValue(QStringLiteral("window/tab"), m_tabs->currentIndex());
  settings.setValue(QStringLiteral("run/variants"), m_variants->specStrings());
  settings.setValue(QStringLiteral("run/decodeSteps"), m_variants->decodeSteps());
  settings.setValue(QStringLiteral("run/prompt"), m_prompt->text());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirmDiscardChanges(tr("quit"))) {
    event->ignore();
    return;
  }
  if (m_restoreSettings) saveSettings();
  m_controller->cancel();
  QMainWindow::closeEvent(event);
}

}  // namespace attnscope::app
