// Settings round trip through QSettings (a temporary ini file, a test organisation name).
#include "settings/settings.h"
#include "temporary_settings_test.h"

#include <QFileInfo>
#include <QTest>

using namespace wan;
using namespace wan::app;

class TestAppSettings : public test::TemporarySettingsTest {
    Q_OBJECT
private slots:
    void defaultsBeforeFirstSave();
    void roundTripThroughDefaultSettings();
    void roundTripThroughIniFile();
};

void TestAppSettings::defaultsBeforeFirstSave() {
    Settings settings;
    QVERIFY(settings.fileName().startsWith(settingsDir_.path()));
    QVERIFY(!settings.hasLastRequest());
    QVERIFY(settings.outputFolder().isEmpty());
    QVERIFY(settings.windowGeometry().isEmpty());
    const GenerationRequest r = settings.lastRequest();
    QCOMPARE(r.width, 0);
    QCOMPARE(r.seed, int64_t(-1));
    QCOMPARE(r.solver, std::string("unipc"));
}

void TestAppSettings::roundTripThroughDefaultSettings() {
    const GenerationRequest r = GenerationRequest::from_json(
        R"({"prompt": "两只猫在舞台上打拳击 — boxing cats", "negative_prompt": "blurry", "size": "832*480",
            "frame_num": 33, "sample_steps": 25, "sample_guide_scale": 6.5, "sample_shift": 8.0,
            "base_seed": 2147483647, "sample_solver": "dpm++", "prompt_extend_target_lang": "en"})");
    {
        Settings settings;
        settings.setOutputFolder(QStringLiteral("/tmp/wan outputs"));
        settings.setLastRequest(r);
        settings.setWindowGeometry(QByteArray("geometry\x01\x02", 10));
        settings.setWindowState(QByteArray("state"));
        settings.setSplitterState(QStringLiteral("main"), QByteArray("split"));
        settings.sync();
        QVERIFY(QFileInfo::exists(settings.fileName()));
    }
    Settings again;
    QVERIFY(again.hasLastRequest());
    QCOMPARE(again.outputFolder(), QStringLiteral("/tmp/wan outputs"));
    const GenerationRequest back = again.lastRequest();
    QCOMPARE(back.prompt, r.prompt);
    QCOMPARE(back.negative_prompt, r.negative_prompt);
    QCOMPARE(back.width, 832);
    QCOMPARE(back.height, 480);
    QCOMPARE(back.frame_num, 33);
    QCOMPARE(back.sample_steps, 25);
    QCOMPARE(back.guide_scale, 6.5);
    QCOMPARE(back.sample_shift, 8.0);
    QCOMPARE(back.seed, int64_t(2147483647LL));
    QCOMPARE(back.solver, std::string("dpm++"));
    QCOMPARE(back.extend_target_lang, std::string("en"));
    QCOMPARE(again.windowGeometry(), QByteArray("geometry\x01\x02", 10));
    QCOMPARE(again.windowState(), QByteArray("state"));
    QCOMPARE(again.splitterState(QStringLiteral("main")), QByteArray("split"));
    QVERIFY(again.splitterState(QStringLiteral("other")).isEmpty());
}

void TestAppSettings::roundTripThroughIniFile() {
    const QString ini = settingsDir_.filePath(QStringLiteral("portable.ini"));
    {
        Settings settings(ini);
        settings.setOutputFolder(QStringLiteral("out"));
        settings.sync();
    }
    QVERIFY(QFileInfo::exists(ini));
    Settings again(ini);
    QCOMPARE(again.outputFolder(), QStringLiteral("out"));
    QVERIFY(!again.hasLastRequest());
}

QTEST_GUILESS_MAIN(TestAppSettings)
#include "test_app_settings.moc"
