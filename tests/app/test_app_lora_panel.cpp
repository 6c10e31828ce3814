// The parameters panel's LoRA list, preset box and Euler step list: what the fields hold survives the
// settings (QSettings ini) and the sidecar (GenerationSidecar JSON) and comes back into the panel unchanged.
#include "core/sidecar.h"
#include "settings/settings.h"
#include "temporary_settings_test.h"
#include "ui/parameters_panel.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QSpinBox>
#include <QTableWidget>
#include <QTest>

using namespace wan;
using namespace wan::app;

class TestAppLoraPanel : public test::TemporarySettingsTest {
    Q_OBJECT
private slots:
    void presetFillsTheFieldsWhichStayEditable();
    void loraListRoundTripsThroughSettingsAndSidecar();
    void disabledLorasAreLeftOut();
};

void TestAppLoraPanel::presetFillsTheFieldsWhichStayEditable() {
    ParametersPanel panel;
    EngineInfo info;
    panel.setEngineInfo(info);
    const int index = panel.presetCombo()->findData(QStringLiteral("lightx2v-4step"));
    QVERIFY(index > 0);
    panel.presetCombo()->setCurrentIndex(index);
    emit panel.presetCombo()->activated(index);
    GenerationRequest r = panel.request();
    QCOMPARE(r.solver, std::string("euler"));
    QCOMPARE(r.sample_steps, 4);
    QVERIFY(r.denoising_steps == (std::vector<int>{1000, 750, 500, 250}));
    QCOMPARE(r.sample_shift, 5.0);
    QCOMPARE(r.guide_scale, 1.0);
    QCOMPARE(r.preset, std::string("lightx2v-4step"));
    QVERIFY(r.validate().empty());
    // Editing the step count after the preset: evenly spaced steps, no list.
    panel.stepsSpin()->setValue(6);
    r = panel.request();
    QCOMPARE(r.sample_steps, 6);
    QVERIFY(r.denoising_steps.empty());
    // Another solver drops the list too (it would be invalid for it).
    emit panel.presetCombo()->activated(index);
    panel.solverCombo()->setCurrentIndex(panel.solverCombo()->findData(QStringLiteral("unipc")));
    QVERIFY(panel.request().denoising_steps.empty());
    QVERIFY(panel.request().validate().empty());
}

void TestAppLoraPanel::loraListRoundTripsThroughSettingsAndSidecar() {
    ParametersPanel panel;
    panel.setEngineInfo(EngineInfo{});
    GenerationRequest in;
    in.prompt = "a kite";
    in.solver = "euler";
    in.sample_steps = 4;
    in.denoising_steps = {1000, 750, 500, 250};
    in.preset = "lightx2v-4step";
    in.loras = {{"/loras/distill: v2.safetensors", 1.0}, {"/loras/style.safetensors", -0.35}};
    panel.setRequest(in);
    QCOMPARE(panel.loraList()->table()->rowCount(), 2);
    const GenerationRequest fromPanel = panel.request();
    QVERIFY(fromPanel.loras == in.loras);
    QVERIFY(fromPanel.denoising_steps == in.denoising_steps);
    QCOMPARE(fromPanel.preset, in.preset);

    {
        Settings settings;
        settings.setLastRequest(fromPanel);
        settings.sync();
    }
    const GenerationRequest fromSettings = Settings().lastRequest();
    QVERIFY(fromSettings.loras == in.loras);
    QVERIFY(fromSettings.denoising_steps == in.denoising_steps);
    QCOMPARE(fromSettings.solver, std::string("euler"));
    QCOMPARE(fromSettings.preset, in.preset);

    GenerationSidecar record;
    record.request = fromSettings;
    const GenerationSidecar back = GenerationSidecar::from_json(record.to_json(), "a.json");
    ParametersPanel reopened;
    reopened.setEngineInfo(EngineInfo{});
    reopened.setRequest(back.request);  // the history's "use these parameters"
    const GenerationRequest again = reopened.request();
    QVERIFY(again.loras == in.loras);
    QVERIFY(again.denoising_steps == in.denoising_steps);
    QCOMPARE(again.preset, in.preset);
    QCOMPARE(again.solver, std::string("euler"));
}

void TestAppLoraPanel::disabledLorasAreLeftOut() {
    ParametersPanel panel;
    panel.loraList()->addLora({"/l/a.safetensors", 0.5});
    panel.loraList()->addLora({"/l/b.safetensors", 1.0}, /*enabled=*/false);
    panel.loraList()->addLora({"/l/c.safetensors", 2.0});
    QVERIFY(panel.request().loras == (std::vector<LoraSpec>{{"/l/a.safetensors", 0.5}, {"/l/c.safetensors", 2.0}}));
    auto* strength = qobject_cast<QDoubleSpinBox*>(panel.loraList()->table()->cellWidget(2, 1));
    QVERIFY(strength);
    strength->setValue(-1.25);
    panel.loraList()->removeRow(0);
    QVERIFY(panel.request().loras == (std::vector<LoraSpec>{{"/l/c.safetensors", -1.25}}));
}

QTEST_MAIN(TestAppLoraPanel)
#include "test_app_lora_panel.moc"
