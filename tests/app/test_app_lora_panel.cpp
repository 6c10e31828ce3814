// The parameters panel's LoRA list, preset box and Euler step list: what the fields hold survives the
// settings (QSettings ini) and the sidecar (GenerationSidecar JSON) and comes back into the panel unchanged.
// With a two-expert model (Wan2.2 A14B, issues 20/22) each LoRA goes to both experts or to one: the Expert
// column shows, the job carries loras / loras_high / loras_low to the engine, the settings keep them, and a
// one-expert model hides the per-expert rows and leaves them out of its jobs.
#include "core/model_defaults.h"
#include "core/sidecar.h"
#include "settings/settings.h"
#include "temporary_settings_test.h"
#include "ui/parameters_panel.h"
#include "window_fixture.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTest>

using namespace wan;
using namespace wan::app;

namespace {
constexpr int kExpertColumn = 2;  // LoraListWidget's third column

EngineInfo infoOf(const std::string& variant) {
    EngineInfo info;
    info.model_variant = variant;
    apply_model_defaults(model_defaults(variant), info);
    return info;
}

const LoraSpec kStyle{"/loras/style.safetensors", 0.8};
const LoraSpec kHigh{"/loras/lightx2v_high_noise.safetensors", 1.0};
const LoraSpec kLow{"/loras/lightx2v_low_noise.safetensors", 0.9};

/// Picks `expert` in the row's Expert box, as a user does.
void chooseExpert(LoraListWidget* list, int row, LoraExpert expert) {
    auto* box = qobject_cast<QComboBox*>(list->table()->cellWidget(row, kExpertColumn));
    QVERIFY(box);
    box->setCurrentIndex(box->findData(static_cast<int>(expert)));
}

/// The style LoRA for both experts, then the accelerator pair, each marked for its expert through the box.
void addThreeLoras(LoraListWidget* list) {
    list->addLora(kStyle);
    list->addLora(kHigh);
    list->addLora(kLow);
    chooseExpert(list, 1, LoraExpert::HighNoise);
    chooseExpert(list, 2, LoraExpert::LowNoise);
}

bool carriesThePair(const GenerationRequest& r) {
    return r.loras == std::vector<LoraSpec>{kStyle} && r.loras_high == std::vector<LoraSpec>{kHigh} &&
           r.loras_low == std::vector<LoraSpec>{kLow};
}

/// The window over the fake engine pretending to be `variant`, with the settings of the test's ini file.
struct ModelWindow : test::WindowFixture {
    explicit ModelWindow(const std::string& variant) {
        FakeBackendConfig config = test::fastFake();
        apply_model_defaults(model_defaults(variant), config.info);
        config.info.sizes = {"64*64"};  // a small poster for the fake to paint
        config.info.default_width = config.info.default_height = 64;
        open(std::make_unique<FakeEngineBackend>(config));
    }
    ParametersPanel* params() const { return window->parametersPanel(); }
    /// Closes like the user does (the settings are saved) and waits for the engine to stop.
    bool closeLikeAUser() {
        window->close();
        return QTest::qWaitFor([&] { return session->state() == EngineSession::State::Stopped; }, 5000);
    }
};
}  // namespace

class TestAppLoraPanel : public test::TemporarySettingsTest {
    Q_OBJECT
private slots:
    void presetFillsTheFieldsWhichStayEditable();
    void loraListRoundTripsThroughSettingsAndSidecar();
    void disabledLorasAreLeftOut();
    void expertColumnFollowsTheModel();
    void windowSendsExpertLorasAndKeepsThem();
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

void TestAppLoraPanel::expertColumnFollowsTheModel() {
    ParametersPanel panel;
    panel.show();
    LoraListWidget* list = panel.loraList();
    QTableWidget* table = list->table();
    QCOMPARE(table->horizontalHeaderItem(kExpertColumn)->text(), QStringLiteral("Expert"));
    panel.setEngineInfo(infoOf("A14B"));
    QVERIFY(list->showsExperts());
    QVERIFY(!table->isColumnHidden(kExpertColumn));
    addThreeLoras(list);
    GenerationRequest r = panel.request();
    QVERIFY(carriesThePair(r));  // --lora style:0.8 --lora-high …:1 --lora-low …:0.9
    QVERIFY(r.validate().empty());
    QVERIFY(!list->hiddenNote()->isVisibleTo(&panel));

    // A one-expert model: the column and the per-expert rows vanish from view and from the job, with a note.
    panel.setEngineInfo(infoOf("1.3B"));
    QVERIFY(!list->showsExperts());
    QVERIFY(table->isColumnHidden(kExpertColumn));
    QVERIFY(!table->isRowHidden(0));
    QVERIFY(table->isRowHidden(1));
    QVERIFY(table->isRowHidden(2));
    QVERIFY(list->hiddenNote()->isVisibleTo(&panel));
    QVERIFY2(list->hiddenNote()->text().startsWith(QLatin1String("2 LoRAs for one expert")),
             qPrintable(list->hiddenNote()->text()));
    r = panel.request();
    QVERIFY(r.loras == std::vector<LoraSpec>{kStyle});
    QVERIFY(r.loras_high.empty());
    QVERIFY(r.loras_low.empty());
    QVERIFY(carriesThePair(panel.savedRequest()));  // the settings keep them for the next A14B model

    // Back to a two-expert model: the rows come back as they were.
    panel.setEngineInfo(infoOf("A14B"));
    QVERIFY(!table->isRowHidden(1));
    QVERIFY(!list->hiddenNote()->isVisibleTo(&panel));
    QVERIFY(carriesThePair(panel.request()));

    // Through the settings into a panel whose model is not known yet, then is A14B.
    {
        Settings settings;
        settings.setLastRequest(panel.savedRequest());
        settings.sync();
    }
    ParametersPanel reopened;
    reopened.setRequest(Settings().lastRequest());
    QCOMPARE(reopened.loraList()->table()->rowCount(), 3);
    QVERIFY(carriesThePair(reopened.savedRequest()));
    reopened.setEngineInfo(infoOf("A14B"));
    QVERIFY(carriesThePair(reopened.request()));
    QCOMPARE(reopened.loraList()->expertOf(1), LoraExpert::HighNoise);
}

void TestAppLoraPanel::windowSendsExpertLorasAndKeepsThem() {
    QSettings().clear();
    {
        ModelWindow a14b("A14B");
        QVERIFY(a14b.waitReady());
        ParametersPanel* p = a14b.params();
        QVERIFY(p->loraList()->showsExperts());
        QVERIFY(!p->loraList()->table()->isColumnHidden(kExpertColumn));
        QTest::keyClicks(p->promptEdit(), QStringLiteral("a kite over the dunes"));
        addThreeLoras(p->loraList());
        QSignalSpy finished(a14b.session.get(), &EngineSession::finished);
        QTest::mouseClick(a14b.window->generateButton(), Qt::LeftButton);
        QTRY_COMPARE(finished.count(), 1);
        // What reached the engine, as the (fake) engine recorded it in the video's sidecar.
        const QString json = QString::fromStdString(finished.at(0).at(1).value<GenerationResult>().json_path);
        QFile f(json);
        QVERIFY2(f.open(QIODevice::ReadOnly), qPrintable(json));
        const GenerationSidecar record = GenerationSidecar::from_json(f.readAll().toStdString(), json.toStdString());
        QVERIFY(carriesThePair(record.request));
        QVERIFY(a14b.closeLikeAUser());
    }
    {
        ModelWindow again("A14B");  // the next start: the settings give the three lists back
        QVERIFY(again.waitReady());
        QVERIFY(carriesThePair(again.params()->request()));
        QVERIFY(again.closeLikeAUser());
    }
    ModelWindow small("1.3B");
    QVERIFY(small.waitReady());
    LoraListWidget* list = small.params()->loraList();
    QVERIFY(!list->showsExperts());
    QVERIFY(list->table()->isColumnHidden(kExpertColumn));
    QVERIFY(list->table()->isRowHidden(1) && list->table()->isRowHidden(2));
    QVERIFY(list->hiddenNote()->isVisible());
    const GenerationRequest r = small.params()->request();
    QVERIFY(r.loras == std::vector<LoraSpec>{kStyle});
    QVERIFY(r.loras_high.empty() && r.loras_low.empty());
    QVERIFY(small.closeLikeAUser());
    QVERIFY(carriesThePair(Settings().lastRequest()));  // closing with the 1.3B model lost none of them
}

QTEST_MAIN(TestAppLoraPanel)
#include "test_app_lora_panel.moc"
