// Main window layout and wiring: see main_window.h.
#include "main_window.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QVBoxLayout>

#include "error_presenter.h"
#include "heatmap_view.h"
#include "model_summary_panel.h"
#include "session_controller.h"

// Resources live in the static attnscope_app_lib; rcc's initialiser must be referenced
// explicitly or the linker drops it. Q_INIT_RESOURCE cannot be used inside a namespace.
static void initAttnscopeResources() {
  Q_INIT_RESOURCE(attnscope);
}

namespace attnscope::app {

namespace {

QString secondsText(double seconds) {
  return seconds < 1.0 ? QStringLiteral("%1 ms").arg(seconds * 1000.0, 0, 'f', 0)
                       : QStringLiteral("%1 s").arg(seconds, 0, 'f', 2);
}

}  // namespace

QString defaultPrompt() {
  initAttnscopeResources();
  QFile file(QStringLiteral(":/prompts/default.txt"));
  if (file.open(QIODevice::ReadOnly)) return QString::fromUtf8(file.readAll()).trimmed();
  return QStringLiteral("The quick brown fox jumps over the lazy dog.");
}

MainWindow::MainWindow(const QString& backendKind, bool restoreSettings, QWidget* parent)
    : QMainWindow(parent), m_restoreSettings(restoreSettings) {
  setWindowTitle(QStringLiteral("attnscope"));
  m_controller = new SessionController(backendKind, this);
  m_errors = new ErrorPresenter(this);
  buildActions();
  buildCentralArea();
  buildStatusBar();
  connectController();
  updateActions();

  resize(1400, 880);
  if (m_restoreSettings) {
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    m_splitter->restoreState(settings.value(QStringLiteral("window/splitter")).toByteArray());
    m_logScale->setChecked(settings.value(QStringLiteral("view/logScale"), true).toBool());
  }
}

MainWindow::~MainWindow() = default;

void MainWindow::buildActions() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  m_openAction = file->addAction(tr("&Open model\u2026"), this, &MainWindow::chooseModelFile);
  m_openAction->setShortcut(QKeySequence::Open);
  m_openAction->setStatusTip(tr("Open a GGUF file or a Hugging Face model directory"));
  m_exportAction = file->addAction(tr("&Export heatmap (PNG/SVG/PDF)\u2026"), this,
                                   &MainWindow::chooseExportFile);
  m_exportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  m_runAction = run->addAction(tr("&Run prompt"), this, &MainWindow::runCurrentPrompt);
  m_runAction->setShortcut(QKeySequence(Qt::Key_F5));
  m_cancelAction = run->addAction(tr("&Cancel"), m_controller, &SessionController::cancelRun);
  m_cancelAction->setShortcut(QKeySequence(Qt::Key_Escape));

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About attnscope"), this, &MainWindow::showAbout);
}

void MainWindow::buildCentralArea() {
  m_splitter = new QSplitter(Qt::Horizontal, this);
  m_splitter->setChildrenCollapsible(false);

  auto* left = new QWidget(m_splitter);
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(6, 6, 6, 6);

  auto* modelBox = new QGroupBox(tr("Model"), left);
  auto* modelLayout = new QVBoxLayout(modelBox);
  m_summary = new ModelSummaryPanel(modelBox);
  modelLayout->addWidget(m_summary);
  leftLayout->addWidget(modelBox);

  auto* promptBox = new QGroupBox(tr("Prompt"), left);
  auto* promptLayout = new QVBoxLayout(promptBox);
  m_prompt = new QPlainTextEdit(promptBox);
  m_prompt->setPlainText(defaultPrompt());
  m_prompt->setPlaceholderText(tr("Type the text whose attention you want to see"));
  promptLayout->addWidget(m_prompt, 1);
  auto* buttons = new QHBoxLayout;
  m_runButton = new QPushButton(tr("Run (F5)"), promptBox);
  m_cancelButton = new QPushButton(tr("Cancel"), promptBox);
  connect(m_runButton, &QPushButton::clicked, this, &MainWindow::runCurrentPrompt);
  connect(m_cancelButton, &QPushButton::clicked, m_controller, &SessionController::cancelRun);
  buttons->addWidget(m_runButton);
  buttons->addWidget(m_cancelButton);
  buttons->addStretch(1);
  promptLayout->addLayout(buttons);
  leftLayout->addWidget(promptBox, 1);

  auto* viewBox = new QGroupBox(tr("Attention map"), left);
  auto* viewLayout = new QFormLayout(viewBox);
  m_layerSpin = new QSpinBox(viewBox);
  m_headSpin = new QSpinBox(viewBox);
  m_layerSpin->setRange(0, 0);
  m_headSpin->setRange(0, 0);
  m_logScale = new QCheckBox(tr("Logarithmic colours"), viewBox);
  m_logScale->setChecked(true);
  auto* resetZoom = new QPushButton(tr("Reset zoom"), viewBox);
  viewLayout->addRow(tr("Layer:"), m_layerSpin);
  viewLayout->addRow(tr("Head:"), m_headSpin);
  viewLayout->addRow(m_logScale);
  viewLayout->addRow(resetZoom);
  leftLayout->addWidget(viewBox);

  m_heatmap = new HeatmapView(m_splitter);
  m_heatmap->setLogScale(m_logScale->isChecked());
  connect(m_logScale, &QCheckBox::toggled, m_heatmap, &HeatmapView::setLogScale);
  connect(resetZoom, &QPushButton::clicked, m_heatmap, &HeatmapView::resetZoom);
  const auto headChanged = [this] {
    m_controller->selectHead(m_layerSpin->value(), m_headSpin->value());
  };
  connect(m_layerSpin, &QSpinBox::valueChanged, this, headChanged);
  connect(m_headSpin, &QSpinBox::valueChanged, this, headChanged);

  m_splitter->addWidget(left);
  m_splitter->addWidget(m_heatmap);
  m_splitter->setStretchFactor(0, 0);
  m_splitter->setStretchFactor(1, 1);
  m_splitter->setSizes({380, 1020});
  setCentralWidget(m_splitter);
}

void MainWindow::buildStatusBar() {
  m_deviceLabel = new QLabel(this);
  m_loadLabel = new QLabel(this);
  m_runLabel = new QLabel(this);
  m_tokensLabel = new QLabel(this);
  m_progress = new QProgressBar(this);
  m_progress->setMaximumWidth(220);
  m_progress->setFormat(tr("layer %v / %m"));
  m_progress->setVisible(false);
  statusBar()->addPermanentWidget(m_progress);
  for (QLabel* label : {m_tokensLabel, m_runLabel, m_loadLabel, m_deviceLabel}) {
    label->setContentsMargins(10, 0, 10, 0);  // keeps neighbouring readouts apart
    statusBar()->addPermanentWidget(label);
  }
  m_deviceLabel->setText(tr("Backend: %1").arg(m_controller->backendKind()));
}

void MainWindow::connectController() {
  SessionController* c = m_controller;
  connect(c, &SessionController::errorOccurred, m_errors, &ErrorPresenter::present);
  connect(
      c, &SessionController::errorOccurred, this,
      [this](const QString&, const QString& message) { statusBar()->showMessage(message, 8000); });
  connect(c, &SessionController::loadStarted, this, [this](const QString& path) {
    if (!m_controller->model()) m_summary->setLoading(path);
    statusBar()->showMessage(tr("Loading %1 \u2026").arg(path));
  });
  connect(c, &SessionController::modelChanged, this, &MainWindow::showModel);
  connect(c, &SessionController::resultChanged, this, &MainWindow::showResult);
  connect(c, &SessionController::heatmapChanged, m_heatmap, &HeatmapView::setHeatmap);
  connect(c, &SessionController::heatmapChanged, this, [this] { updateActions(); });
  connect(c, &SessionController::busyChanged, this, [this] {
    // A failed load leaves the panel showing the model that is still current.
    if (!m_controller->isLoading()) m_summary->setModel(m_controller->model());
    if (!m_controller->isRunning()) m_progress->setVisible(false);
    updateActions();
  });
  connect(c, &SessionController::runStarted, this, [this](int layers) {
    m_progress->setRange(0, layers);
    m_progress->setValue(0);
    m_progress->setVisible(true);
    statusBar()->showMessage(tr("Running \u2026"));
  });
  connect(c, &SessionController::runProgress, this, [this](int done, int total) {
    m_progress->setRange(0, total);
    m_progress->setValue(done);
  });
  connect(c, &SessionController::runCancelled, this,
          [this] { statusBar()->showMessage(tr("Run cancelled"), 5000); });
}

void MainWindow::updateActions() {
  const bool haveModel = m_controller->model() != nullptr;
  const bool running = m_controller->isRunning();
  m_runAction->setEnabled(haveModel && !running);
  m_runButton->setEnabled(haveModel && !running);
  m_cancelAction->setEnabled(running);
  m_cancelButton->setEnabled(running);
  m_exportAction->setEnabled(m_heatmap->heatmap() != nullptr);
  m_layerSpin->setEnabled(haveModel);
  m_headSpin->setEnabled(haveModel);
}

void MainWindow::showModel(const LoadedModelPtr& model) {
  m_summary->setModel(model);
  if (model && model->model) {
    const ModelConfig& config = model->model->config;
    const QSignalBlocker blockLayer(m_layerSpin);
    const QSignalBlocker blockHead(m_headSpin);
    m_layerSpin->setRange(0, std::max(0, config.n_layer - 1));
    m_headSpin->setRange(0, std::max(0, config.n_head - 1));
    m_layerSpin->setValue(m_controller->layer());
    m_headSpin->setValue(m_controller->head());
    m_loadLabel->setText(tr("Load: %1").arg(secondsText(model->loadSeconds)));
    const QString name = QString::fromStdString(config.name);
    setWindowTitle(name.isEmpty() ? QStringLiteral("attnscope")
                                  : QStringLiteral("%1 \u2014 attnscope").arg(name));
    statusBar()->showMessage(tr("Model loaded"), 4000);
  }
  updateActions();
}

void MainWindow::showResult(const RunResultPtr& result) {
  if (!result) {
    m_runLabel->clear();
    m_tokensLabel->clear();
    return;
  }
  m_deviceLabel->setText(tr("Backend: %1").arg(result->device));
  m_runLabel->setText(tr("Run: %1").arg(secondsText(result->runSeconds)));
  m_tokensLabel->setText(tr("%1 tokens").arg(result->nTokens()));
  statusBar()->showMessage(tr("Run finished"), 4000);
}

void MainWindow::openModel(const QString& path) {
  m_controller->openModel(path);
}

void MainWindow::runCurrentPrompt() {
  if (!m_runAction->isEnabled()) return;
  m_controller->runPrompt(m_prompt->toPlainText());
}

void MainWindow::selectLayerHead(int layer, int head) {
  // Setting both spin boxes first, then asking once, avoids computing an intermediate map.
  {
    const QSignalBlocker blockLayer(m_layerSpin);
    const QSignalBlocker blockHead(m_headSpin);
    m_layerSpin->setValue(layer);
    m_headSpin->setValue(head);
  }
  m_controller->selectHead(m_layerSpin->value(), m_headSpin->value());
}

void MainWindow::chooseModelFile() {
  QSettings settings;
  const QString dir = settings.value(QStringLiteral("paths/lastModelDir")).toString();
  const QString chosen =
      QFileDialog::getOpenFileName(this, tr("Open model"), dir,
                                   tr("Model files (*.gguf config.json);;GGUF model (*.gguf);;"
                                      "Hugging Face directory (config.json);;All files (*)"));
  if (chosen.isEmpty()) return;
  const QFileInfo info(chosen);
  settings.setValue(QStringLiteral("paths/lastModelDir"), info.absolutePath());
  // A Hugging Face model is a directory; any file picked inside it stands for the directory.
  const bool gguf = info.suffix().compare(QLatin1String("gguf"), Qt::CaseInsensitive) == 0;
  openModel(gguf ? info.absoluteFilePath() : info.absolutePath());
}

void MainWindow::chooseExportFile() {
  if (!m_heatmap->heatmap()) return;
  QSettings settings;
  const QString dir = settings.value(QStringLiteral("paths/lastExportDir")).toString();
  const HeatmapDataPtr map = m_heatmap->heatmap();
  const QString suggested =
      QDir(dir).filePath(QStringLiteral("attention_L%1_H%2.png").arg(map->layer).arg(map->head));
  QString selectedFilter;
  QString path = QFileDialog::getSaveFileName(
      this, tr("Export heatmap"), suggested,
      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"), &selectedFilter);
  if (path.isEmpty()) return;
  if (!plotFormatForPath(path)) {
    if (selectedFilter.contains(QLatin1String("svg"))) {
      path += QStringLiteral(".svg");
    } else if (selectedFilter.contains(QLatin1String("pdf"))) {
      path += QStringLiteral(".pdf");
    } else {
      path += QStringLiteral(".png");
    }
  }
  settings.setValue(QStringLiteral("paths/lastExportDir"), QFileInfo(path).absolutePath());
  PlotExportOptions options;
  if (plotFormatForPath(path) == PlotFormat::Png) {
    bool ok = false;
    const double scale =
        QInputDialog::getDouble(this, tr("PNG resolution"),
                                tr("Scale (1 = screen size, 2 = 192 dpi):"), 2.0, 0.5, 8.0, 1, &ok);
    if (!ok) return;
    options.scale = scale;
    options.dpi = qRound(96 * scale);
  }
  const QString error = m_heatmap->exportTo(path, options);
  if (!error.isEmpty()) {
    m_errors->present(tr("Export failed"), error);
  } else {
    statusBar()->showMessage(tr("Exported %1").arg(path), 5000);
  }
}

void MainWindow::showAbout() {
  QMessageBox::about(
      this, tr("About attnscope"),
      tr("<h3>attnscope %1</h3>"
         "<p>Looks inside the attention of small language models.</p>"
         "<p>Qt %2 (built with %3) \u00b7 QCustomPlot %4</p>")
          .arg(QStringLiteral(ATTNSCOPE_VERSION), QString::fromLatin1(qVersion()),
               QStringLiteral(QT_VERSION_STR), QStringLiteral(QCUSTOMPLOT_VERSION_STR)));
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (m_restoreSettings) {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/splitter"), m_splitter->saveState());
    settings.setValue(QStringLiteral("view/logScale"), m_logScale->isChecked());
  }
  m_controller->cancelRun();
  QMainWindow::closeEvent(event);
}

}  // namespace attnscope::app
