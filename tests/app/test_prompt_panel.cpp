// PromptPanel: loading files (valid UTF-8 with and without BOM, invalid UTF-8 with its byte
// offset, missing, too large, a folder, empty, binary) leaves the editor unchanged on failure;
// the built-in examples load and say what they should (the passkey at about 60% depth); the
// live count; dropped files go through the same checks and report through errorOccurred.
#include <gtest/gtest.h>

#include <QAction>
#include <QDir>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTest>
#include <QUrl>

#include "app_test_support.h"
#include "prompt_panel.h"

namespace attnscope::app {
namespace {

QString writeFile(const QString& dir, const QString& name, const QByteArray& bytes) {
  const QString path = dir + QLatin1Char('/') + name;
  QFile file(path);
  EXPECT_TRUE(file.open(QIODevice::WriteOnly));
  file.write(bytes);
  return path;
}

const QString kKept = QStringLiteral("the prompt the user typed");

TEST(PromptPanel, LoadsUtf8FilesAsOneUndoStep) {
  PromptPanel panel;
  panel.setText(kKept);
  const QString dir = test::tempDir(QStringLiteral("prompt_panel"));
  const QByteArray text =
      "Gr\xC3\xBC\xC3\x9F"
      "e aus K\xC3\xB6ln \xE2\x80\x94 \xF0\x9F\x98\x80\nline two";
  const QString path = writeFile(dir, QStringLiteral("ok.txt"), text);
  EXPECT_EQ(panel.loadFile(path), QString());
  EXPECT_EQ(panel.text(), QString::fromUtf8(text));
  EXPECT_EQ(panel.utf8(), text.toStdString());
  panel.editor()->undo();
  EXPECT_EQ(panel.text(), kKept) << "the previous prompt is one undo away";

  // A UTF-8 byte order mark is dropped.
  const QString bom = writeFile(dir, QStringLiteral("bom.txt"), QByteArray("\xEF\xBB\xBFhello"));
  EXPECT_EQ(panel.loadFile(bom), QString());
  EXPECT_EQ(panel.text(), QStringLiteral("hello"));
}

TEST(PromptPanel, InvalidUtf8LeavesTheTextAndReportsTheByteOffset) {
  PromptPanel panel;
  panel.setText(kKept);
  QSignalSpy changed(&panel, &PromptPanel::textChanged);
  const QString dir = test::tempDir(QStringLiteral("prompt_panel"));
  const QString path =
      writeFile(dir, QStringLiteral("latin1.txt"), QByteArray("abc d\xE9j\xE0 vu"));
  const QString error = panel.loadFile(path);
  EXPECT_EQ(error, QDir::toNativeSeparators(path) + QStringLiteral(": invalid UTF-8 at byte 5"));
  EXPECT_EQ(panel.text(), kKept);
  EXPECT_EQ(changed.count(), 0);
  // Offsets count a BOM, so they match what a hex viewer shows.
  const QString bom =
      writeFile(dir, QStringLiteral("bom_bad.txt"), QByteArray("\xEF\xBB\xBFok\xFF"));
  EXPECT_TRUE(panel.loadFile(bom).endsWith(QStringLiteral("invalid UTF-8 at byte 5")));
  // A truncated multi-byte sequence at the end.
  const QString cut = writeFile(dir, QStringLiteral("cut.txt"), QByteArray("ok \xE2\x80"));
  EXPECT_TRUE(panel.loadFile(cut).endsWith(QStringLiteral("invalid UTF-8 at byte 3")));
  EXPECT_EQ(panel.text(), kKept);
}

TEST(PromptPanel, MissingTooLargeFolderEmptyAndBinaryFilesAreRefused) {
  PromptPanel panel;
  panel.setText(kKept);
  const QString dir = test::tempDir(QStringLiteral("prompt_panel"));

  const QString missing = dir + QStringLiteral("/nope.txt");
  const QString error = panel.loadFile(missing);
  EXPECT_TRUE(
      error.startsWith(QDir::toNativeSeparators(missing) + QStringLiteral(": cannot read (")))
      << error.toStdString();
  EXPECT_TRUE(error.endsWith(QLatin1Char(')')));

  const QString big =
      writeFile(dir, QStringLiteral("big.txt"), QByteArray(PromptPanel::kMaxFileBytes + 1, 'a'));
  const QString tooLarge = panel.loadFile(big);
  EXPECT_TRUE(tooLarge.startsWith(QDir::toNativeSeparators(big) + QStringLiteral(": too large")))
      << tooLarge.toStdString();
  // Exactly at the limit is accepted.
  const QString limit =
      writeFile(dir, QStringLiteral("limit.txt"), QByteArray(PromptPanel::kMaxFileBytes, 'b'));
  PromptPanel other;
  EXPECT_EQ(other.loadFile(limit), QString());
  EXPECT_EQ(other.text().size(), PromptPanel::kMaxFileBytes);

  EXPECT_TRUE(panel.loadFile(dir).contains(QStringLiteral("folder")));
  const QString empty = writeFile(dir, QStringLiteral("empty.txt"), QByteArray());
  EXPECT_TRUE(panel.loadFile(empty).endsWith(QStringLiteral(": is empty")));
  const QString binary = writeFile(dir, QStringLiteral("bin.dat"), QByteArray("ab\0cd", 5));
  EXPECT_TRUE(panel.loadFile(binary).contains(QStringLiteral("NUL byte at byte 2")));
  EXPECT_EQ(panel.text(), kKept);
}

TEST(PromptPanel, ExamplesLoadAndAreWhatTheySay) {
  const auto examples = PromptPanel::examples();
  ASSERT_GE(examples.size(), 5);
  PromptPanel panel;
  QSignalSpy errors(&panel, &PromptPanel::errorOccurred);
  QStringList texts;
  for (const auto& [title, resource] : examples) {
    SCOPED_TRACE(resource.toStdString());
    EXPECT_FALSE(title.isEmpty());
    panel.setText(kKept);
    panel.loadExample(resource);
    EXPECT_EQ(errors.count(), 0);
    EXPECT_NE(panel.text(), kKept);
    EXPECT_GT(panel.text().trimmed().size(), 100);
    EXPECT_FALSE(panel.text().endsWith(QLatin1Char('\n'))) << "the prompt ends on its last word";
    texts << panel.text();
  }
  // The menu lists the same examples and loads them.
  ASSERT_EQ(panel.examplesMenu()->actions().size(), examples.size());
  panel.setText(kKept);
  panel.examplesMenu()->actions().at(2)->trigger();
  EXPECT_EQ(panel.text(), texts.at(2));

  const auto find = [&](const QString& resourceName) {
    for (int i = 0; i < examples.size(); ++i)
      if (examples[i].second.endsWith(resourceName)) return texts.at(i);
    ADD_FAILURE() << "no example " << resourceName.toStdString();
    return QString();
  };
  const QString passkey = find(QStringLiteral("passkey_haystack.txt"));
  const QString keyLine =
      QStringLiteral("The pass key is 68731. Remember it. 68731 is the pass key.");
  ASSERT_TRUE(passkey.contains(keyLine));
  EXPECT_TRUE(passkey.endsWith(QStringLiteral("What is the pass key? The pass key is")));
  const double depth = static_cast<double>(passkey.indexOf(keyLine)) / passkey.size();
  EXPECT_GT(depth, 0.5);
  EXPECT_LT(depth, 0.7);
  EXPECT_EQ(passkey.count(QStringLiteral("68731")), 2) << "the key appears only in its line";

  const QString prose = find(QStringLiteral("prose_canal.txt"));
  const qsizetype words =
      prose.split(QRegularExpression(QStringLiteral("\\s+")), Qt::SkipEmptyParts).size();
  EXPECT_GT(words, 1100);
  EXPECT_LT(words, 2000);
  EXPECT_GE(prose.count(QStringLiteral("Tomas Varga")), 10) << "recurring names to retrieve";
  EXPECT_GE(prose.count(QStringLiteral("seventeen locks")), 4);

  const QString code = find(QStringLiteral("code_snippet.txt"));
  EXPECT_TRUE(code.contains(QStringLiteral("def ")));
  const QString multi = find(QStringLiteral("multilingual.txt"));
  for (const char32_t sample : {U'\u0431', U'\u03b2', U'\u4e66', U'\u3067', U'\u0627', U'\u0915'}) {
    EXPECT_TRUE(multi.contains(QString::fromUcs4(&sample, 1)))
        << "script of U+" << std::hex << static_cast<unsigned>(sample);
  }
}

TEST(PromptPanel, MissingExampleReportsThroughTheSignal) {
  PromptPanel panel;
  panel.setText(kKept);
  QSignalSpy errors(&panel, &PromptPanel::errorOccurred);
  panel.loadExample(QStringLiteral(":/prompts/no_such_example.txt"));
  ASSERT_EQ(errors.count(), 1);
  EXPECT_TRUE(errors.at(0).at(1).toString().contains(QStringLiteral("no_such_example.txt")));
  EXPECT_EQ(panel.text(), kKept);
}

TEST(PromptPanel, CountsCharactersAndLinesLive) {
  PromptPanel panel;
  QSignalSpy changed(&panel, &PromptPanel::textChanged);
  panel.setText(QStringLiteral("h\u00e9llo\nw\u00f6rld ") + QString::fromUcs4(U"\U0001F600", 1));
  EXPECT_GE(changed.count(), 1);
  EXPECT_EQ(panel.countText(), QStringLiteral("13 characters \u00b7 2 lines"));
  auto* label = panel.findChild<QLabel*>(QStringLiteral("promptCount"));
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->text(), panel.countText());
  panel.setText(QString());
  EXPECT_EQ(panel.countText(), QStringLiteral("0 characters \u00b7 0 lines"));
  // Typing updates the label after a short pause.
  panel.show();
  panel.editor()->setFocus();
  QTest::keyClicks(panel.editor(), QStringLiteral("a"));
  EXPECT_TRUE(test::waitFor(
      [&] { return label->text() == QStringLiteral("1 character \u00b7 1 line"); }, 5000))
      << label->text().toStdString();
}

TEST(PromptPanel, DroppedFilesAreCheckedAndErrorsReported) {
  PromptPanel panel;
  panel.resize(400, 300);
  panel.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&panel));
  panel.setText(kKept);
  QSignalSpy errors(&panel, &PromptPanel::errorOccurred);
  const QString dir = test::tempDir(QStringLiteral("prompt_panel"));
  const auto drop = [&](const QString& path) {
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(path)});
    QWidget* target = panel.editor()->viewport();
    QDragEnterEvent enter(QPoint(20, 20), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(target, &enter);
    EXPECT_TRUE(enter.isAccepted()) << "a local file is accepted";
    QDropEvent event(QPointF(20, 20), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(target, &event);
  };
  drop(writeFile(dir, QStringLiteral("bad.txt"), QByteArray("x\xC0y")));
  ASSERT_EQ(errors.count(), 1);
  EXPECT_TRUE(errors.at(0).at(1).toString().endsWith(QStringLiteral("invalid UTF-8 at byte 1")));
  EXPECT_EQ(panel.text(), kKept);
  drop(writeFile(dir, QStringLiteral("good.txt"), QByteArray("dropped text")));
  EXPECT_EQ(errors.count(), 1);
  EXPECT_EQ(panel.text(), QStringLiteral("dropped text")) << "loaded, not the path inserted";
}

TEST(PromptPanel, DrawsItsToolbarCountAndText) {
  PromptPanel panel;
  panel.resize(360, 300);
  panel.loadExample(PromptPanel::examples().at(2).second);
  panel.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&panel));
  const QImage image = test::grabImage(&panel);
  EXPECT_GT(test::inkFraction(image), 0.05);
  EXPECT_GT(test::distinctColors(image), 6);
  const QString shots = qEnvironmentVariable("ATTNSCOPE_TEST_SHOTS");
  if (!shots.isEmpty()) {
    QDir().mkpath(shots);
    image.save(shots + QStringLiteral("/prompt_panel.png"));
  }
}

}  // namespace
}  // namespace attnscope::app
