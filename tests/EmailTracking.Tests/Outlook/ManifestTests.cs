using System.Net;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using EmailTracking.Server.Outlook;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Outlook;

/// <summary>
/// The Outlook add-in's XML manifests. Outlook validates them against the MailApp schema, whose XSDs are published only
/// inside the [MS-OWEMXML] document: the rules below are the ones the schema and Microsoft's manifest documentation
/// state for every element these manifests use (order, required children, attribute values), written out here.
/// </summary>
public sealed partial class ManifestTests
{
    static readonly XNamespace App = "http://schemas.microsoft.com/office/appforoffice/1.1";
    static readonly XNamespace Xsi = "http://www.w3.org/2001/XMLSchema-instance";
    static readonly XNamespace Bt = "http://schemas.microsoft.com/office/officeappbasictypes/1.0";
    static readonly XNamespace Mail10 = "http://schemas.microsoft.com/office/mailappversionoverrides";
    static readonly XNamespace Mail11 = "http://schemas.microsoft.com/office/mailappversionoverrides/1.1";

    /// <summary>
    /// Children in the order the schema requires (an element out of order is rejected like one in the wrong parent).
    /// Key: the parent's local name (for VersionOverrides, the 1.1 one). A child may repeat where the schema allows.
    /// </summary>
    static readonly Dictionary<string, string[]> Order = new()
    {
        // MailApp: OfficeApp's sequence.
        ["OfficeApp"] = ["Id", "AlternateId", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description", "IconUrl",
            "HighResolutionIconUrl", "SupportUrl", "AppDomains", "Hosts", "Requirements", "FormSettings", "Permissions", "Rule",
            "DisableEntityHighlighting", "VersionOverrides"],
        // Mail VersionOverrides 1.1.
        ["VersionOverrides"] = ["Description", "Requirements", "Hosts", "Resources", "WebApplicationInfo", "EquivalentAddins"],
        // Runtimes first in the MailHost, then the form factor; the function file before the extension points.
        ["Host"] = ["Runtimes", "DesktopFormFactor"],
        ["DesktopFormFactor"] = ["FunctionFile", "ExtensionPoint"],
        ["Resources"] = ["Images", "Urls", "ShortStrings", "LongStrings"],
        ["WebApplicationInfo"] = ["Id", "Resource", "Scopes"],
        ["Control"] = ["Label", "Supertip", "Icon", "Action"],
        ["Supertip"] = ["Title", "Description"],
        ["DesktopSettings"] = ["SourceLocation", "RequestedHeight"],
        ["ExtensionPoint:LaunchEvent"] = ["LaunchEvents", "SourceLocation"],
        ["ExtensionPoint:MessageReadCommandSurface"] = ["OfficeTab"],
        ["ExtensionPoint:MessageComposeCommandSurface"] = ["OfficeTab"],
        ["Group"] = ["Label", "Control"],
    };

    /// <summary>What a MailApp must have.</summary>
    static readonly string[] RequiredInOfficeApp = ["Id", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description", "FormSettings", "Rule"];

    static string ManifestDir => Path.Combine(RepoRoot(), "addin-manifests", "outlook");

    static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EmailTracking.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("EmailTracking.sln not found above the test output.");
    }

    public static TheoryData<string> Manifests() => ["manifest.xml", "manifest.localhost.xml"];

    static XDocument Load(string name) => XDocument.Load(Path.Combine(ManifestDir, name), LoadOptions.SetLineInfo);

    static string Type(XElement e) => (string?)e.Attribute(Xsi + "type") ?? "";

    static XElement Outer(XDocument d) => d.Root!.Element(Mail10 + "VersionOverrides")!;

    static XElement Inner(XDocument d) => Outer(d).Element(Mail11 + "VersionOverrides")!;

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Root_and_version_overrides_are_a_mail_app_with_1_1_nested_in_1_0(string name)
    {
        var d = Load(name);
        Assert.Equal(App + "OfficeApp", d.Root!.Name);
        Assert.Equal("MailApp", Type(d.Root));
        Assert.Equal("VersionOverridesV1_0", Type(Outer(d)));
        Assert.NotNull(Outer(d).Element(Mail11 + "VersionOverrides"));
        Assert.Equal("VersionOverridesV1_1", Type(Inner(d)));
        foreach (var required in RequiredInOfficeApp) Assert.NotNull(d.Root.Element(App + required));
        Assert.True(Guid.TryParse(d.Root.Element(App + "Id")!.Value, out _), "Id is a GUID");
        Assert.Matches(@"^\d{1,5}\.\d{1,5}\.\d{1,5}\.\d{1,5}$", d.Root.Element(App + "Version")!.Value);
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Every_element_with_an_order_rule_has_its_children_in_schema_order(string name)
    {
        var d = Load(name);
        var checkedParents = 0;
        foreach (var e in d.Descendants())
        {
            var key = e.Name.LocalName == "ExtensionPoint" ? "ExtensionPoint:" + Type(e) : e.Name.LocalName;
            // The outer (1.0) VersionOverrides holds only the 1.1 one; the rule is for 1.1.
            if (e.Name == Mail10 + "VersionOverrides") continue;
            if (!Order.TryGetValue(key, out var order)) continue;
            checkedParents++;
            var last = -1;
            foreach (var child in e.Elements())
            {
                var at = Array.IndexOf(order, child.Name.LocalName);
                Assert.True(at >= 0, $"{name} line {((System.Xml.IXmlLineInfo)child).LineNumber}: <{child.Name.LocalName}> is not a child <{key}> may have");
                if (at < last)
                {
                    Assert.Fail($"{name} line {((System.Xml.IXmlLineInfo)child).LineNumber}: <{child.Name.LocalName}> comes after <{order[last]}> but must come before it in <{key}>");
                }
                last = at;
            }
        }
        Assert.True(checkedParents >= 15, $"only {checkedParents} elements were checked");
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Permissions_rules_surfaces_and_the_on_send_event_are_what_the_add_in_needs(string name)
    {
        var d = Load(name);
        Assert.Equal("ReadWriteItem", d.Root!.Element(App + "Permissions")!.Value);
        var rules = d.Root.Element(App + "Rule")!;
        Assert.Equal(("RuleCollection", "Or"), (Type(rules), (string?)rules.Attribute("Mode")));
        var items = rules.Elements(App + "Rule").ToList();
        Assert.All(items, r => Assert.Equal(("ItemIs", "Message"), (Type(r), (string?)r.Attribute("ItemType"))));
        // FormType is required on a rule under OfficeApp.
        Assert.Equal(["Edit", "Read"], items.Select(r => (string?)r.Attribute("FormType")).Order());
        Assert.Equal(["ItemEdit", "ItemRead"], d.Root.Element(App + "FormSettings")!.Elements(App + "Form").Select(Type).Order());

        var host = Inner(d).Element(Mail11 + "Hosts")!.Element(Mail11 + "Host")!;
        Assert.Equal("MailHost", Type(host));
        var runtime = host.Element(Mail11 + "Runtimes")!.Element(Mail11 + "Runtime")!;
        Assert.Equal("javascript", (string?)runtime.Element(Mail11 + "Override")!.Attribute("type"));
        var points = host.Element(Mail11 + "DesktopFormFactor")!.Elements(Mail11 + "ExtensionPoint").ToList();
        Assert.Equal(["LaunchEvent", "MessageComposeCommandSurface", "MessageReadCommandSurface"], points.Select(Type).Order());

        var launch = points.Single(p => Type(p) == "LaunchEvent");
        var ev = launch.Element(Mail11 + "LaunchEvents")!.Elements(Mail11 + "LaunchEvent").Single();
        Assert.Equal(("OnMessageSend", "onMessageSendHandler", "SoftBlock"),
            ((string?)ev.Attribute("Type"), (string?)ev.Attribute("FunctionName"), (string?)ev.Attribute("SendMode")));
        // The event runs in the same runtime the Runtimes element declares.
        Assert.Equal((string?)runtime.Attribute("resid"), (string?)launch.Element(Mail11 + "SourceLocation")!.Attribute("resid"));
        // OnMessageSend needs Mailbox 1.12.
        var sets = Inner(d).Element(Mail11 + "Requirements")!.Element(Bt + "Sets")!;
        Assert.True(Version.Parse((string)sets.Attribute("DefaultMinVersion")!) >= new Version(1, 12));

        foreach (var control in points.SelectMany(p => p.Descendants(Mail11 + "Control")))
        {
            Assert.Equal("Button", Type(control));
            Assert.Equal("ShowTaskpane", Type(control.Element(Mail11 + "Action")!));
            Assert.Equal(["16", "32", "80"], control.Element(Mail11 + "Icon")!.Elements(Bt + "Image").Select(i => (string)i.Attribute("size")!));
        }
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Ids_are_unique_and_every_resid_is_defined_and_every_resource_used(string name)
    {
        var d = Load(name);
        var resources = Inner(d).Element(Mail11 + "Resources")!;
        var defined = resources.Descendants().Where(e => e.Attribute("id") is not null).Select(e => (string)e.Attribute("id")!).ToList();
        Assert.Equal(defined.Count, defined.Distinct(StringComparer.Ordinal).Count());
        Assert.All(defined, id => Assert.True(id.Length <= 32, $"resource id {id} is longer than 32 characters"));

        // Groups and controls are named once across the manifest (TabDefault is a built-in tab, named in each surface).
        var named = d.Descendants().Where(e => e.Name.LocalName is "Group" or "Control").Select(e => (string)e.Attribute("id")!).ToList();
        Assert.Equal(named.Count, named.Distinct(StringComparer.Ordinal).Count());
        Assert.All(d.Descendants().Where(e => e.Name.LocalName == "OfficeTab"), t => Assert.Equal("TabDefault", (string?)t.Attribute("id")));

        var referenced = d.Descendants().Select(e => (string?)e.Attribute("resid")).OfType<string>().ToHashSet(StringComparer.Ordinal);
        Assert.Empty(referenced.Except(defined));
        Assert.Empty(defined.Except(referenced));

        // Each resid points at a resource of the kind its element needs.
        string KindOf(string id) => resources.Descendants().First(e => (string?)e.Attribute("id") == id).Parent!.Name.LocalName;
        foreach (var e in d.Descendants().Where(e => e.Attribute("resid") is not null))
        {
            var expected = e.Name.LocalName switch
            {
                "Image" => "Images",
                "SourceLocation" or "FunctionFile" or "Runtime" or "Override" => "Urls",
                "Label" or "Title" => "ShortStrings",
                "Description" => "LongStrings",
                var other => throw new Xunit.Sdk.XunitException($"no rule for resid on <{other}>"),
            };
            Assert.True(KindOf((string)e.Attribute("resid")!) == expected, $"<{e.Name.LocalName} resid=\"{e.Attribute("resid")!.Value}\"> must point into {expected}");
        }
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Web_application_info_names_the_app_registration_on_the_add_ins_own_host(string name)
    {
        var d = Load(name);
        var info = Inner(d).Element(Mail11 + "WebApplicationInfo")!;
        var clientId = info.Element(Mail11 + "Id")!.Value;
        Assert.True(Guid.TryParse(clientId, out _));
        var resource = info.Element(Mail11 + "Resource")!.Value;
        var host = new Uri(d.Root!.Element(App + "FormSettings")!.Descendants(App + "SourceLocation").First().Attribute("DefaultValue")!.Value).Authority;
        // The resource's domain is the one the add-in's pages come from, and it ends with the client id.
        Assert.Equal($"api://{host}/{clientId}", resource);
        Assert.NotEmpty(info.Element(Mail11 + "Scopes")!.Elements(Mail11 + "Scope"));
    }

    [Fact]
    public void Urls_are_https_on_one_base_and_the_localhost_twin_differs_only_in_base_id_and_name()
    {
        var production = Load("manifest.xml");
        var twin = Load("manifest.localhost.xml");
        Assert.All(OutlookManifest.Urls(production), u => Assert.StartsWith(OutlookManifest.PlaceholderBaseUrl + "/", u));
        Assert.All(OutlookManifest.Urls(twin), u => Assert.StartsWith(OutlookManifest.LocalhostBaseUrl + "/", u));

        var rendered = XDocument.Parse(OutlookManifest.Render(File.ReadAllText(Path.Combine(ManifestDir, "manifest.xml")),
            OutlookManifest.LocalhostBaseUrl, OutlookManifest.PlaceholderClientId.Replace('0', '1')));
        rendered.Root!.Element(App + "Id")!.Value = twin.Root!.Element(App + "Id")!.Value;
        rendered.Root.Element(App + "DisplayName")!.SetAttributeValue("DefaultValue", twin.Root.Element(App + "DisplayName")!.Attribute("DefaultValue")!.Value);
        var expected = rendered.ToString().Replace("11111111-1111-1111-1111-111111111111", OutlookManifest.PlaceholderClientId, StringComparison.Ordinal);
        Assert.Equal(Strip(expected), Strip(twin.ToString()));
        Assert.NotEqual(production.Root!.Element(App + "Id")!.Value, twin.Root.Element(App + "Id")!.Value);
    }

    static string Strip(string xml)
    {
        var d = XDocument.Parse(xml);
        d.DescendantNodes().OfType<XComment>().ToList().ForEach(c => c.Remove());
        return d.ToString(SaveOptions.None);
    }

    [Fact]
    public async Task Et_outlook_manifest_writes_the_deployable_manifest_and_refuses_what_outlook_would()
    {
        var file = Path.Combine(Path.GetTempPath(), $"outlook-{Guid.NewGuid():N}.xml");
        const string client = "5b3f6c1a-1111-4222-8333-444455556666";
        try
        {
            Assert.Equal(0, await EmailTracking.Cli.EtProgram.Main(["outlook-manifest", "--base-url", "https://t.example.com/", "--client-id", client, "--out", file]));
            var d = XDocument.Load(file);
            var urls = OutlookManifest.Urls(d);
            Assert.Contains("https://t.example.com/addin/compose.html", urls);
            Assert.Contains("https://t.example.com/addin/launchevent.js", urls);
            Assert.All(urls, u => Assert.StartsWith("https://t.example.com/", u));
            var info = Inner(d).Element(Mail11 + "WebApplicationInfo")!;
            Assert.Equal(client, info.Element(Mail11 + "Id")!.Value);
            Assert.Equal($"api://t.example.com/{client}", info.Element(Mail11 + "Resource")!.Value);
            Assert.DoesNotContain("example.com/addin", File.ReadAllText(file).Replace("t.example.com", "", StringComparison.Ordinal));
            Assert.DoesNotContain(OutlookManifest.PlaceholderClientId, File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["outlook-manifest", "--base-url", "http://t.example.com", "--client-id", client]));
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["outlook-manifest", "--base-url", "https://t.example.com/?x=1", "--client-id", client]));
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["outlook-manifest", "--base-url", "https://t.example.com", "--client-id", "not-a-guid"]));
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["outlook-manifest", "--base-url", "https://t.example.com", "--client-id", OutlookManifest.PlaceholderClientId]));
    }

    [GeneratedRegex(@"^https://[^/]+")]
    private static partial Regex BaseOf();

    /// <summary>The paths every manifest URL names, on this server.</summary>
    static List<string> Paths() =>
        new[] { "manifest.xml", "manifest.localhost.xml" }.SelectMany(m => OutlookManifest.Urls(Load(m)))
            .Where(u => !u.StartsWith("api://", StringComparison.Ordinal))
            .Select(u => BaseOf().Replace(u, "")).Select(p => p.Length == 0 ? "/" : p).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Every URL in both manifests is served by a running server. The pages, scripts and icons under /addin come from
    /// web-taskpane's build (npm run build, which test.sh runs first) into the server's wwwroot/addin.
    /// </summary>
    [Fact]
    public async Task Every_url_in_the_manifests_is_served_by_the_server()
    {
        var built = Path.Combine(RepoRoot(), "src", "EmailTracking.Server", "wwwroot", "addin");
        Assert.True(Directory.Exists(built),
            $"{built} does not exist: the Outlook add-in's pages are built by web-taskpane (cd web-taskpane && npm ci && npm run build; test.sh does this before the tests).");

        var app = new SqliteApp();
        await app.InitializeAsync();
        try
        {
            await GetEveryPathAsync(app);
        }
        finally
        {
            await ((IAsyncLifetime)app).DisposeAsync();
        }
    }

    static async Task GetEveryPathAsync(SqliteApp app)
    {
        await app.NewUserAsync(); // past first-run setup, so / leads to the sign-in page
        var client = app.CreateClient();
        var paths = Paths();
        Assert.Contains("/addin/launchevent.js", paths);
        foreach (var path in paths)
        {
            using var res = await client.GetAsync(path);
            Assert.True(res.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)res.StatusCode}");
            var type = res.Content.Headers.ContentType?.MediaType;
            if (path.EndsWith(".png", StringComparison.Ordinal)) Assert.Equal("image/png", type);
            if (path.EndsWith(".js", StringComparison.Ordinal)) Assert.Equal("text/javascript", type);
            if (path.EndsWith(".html", StringComparison.Ordinal))
            {
                Assert.Equal("text/html", type);
                // Outlook on the web and new Outlook show the pane in a frame of theirs: only they may frame it.
                Assert.False(res.Headers.Contains("X-Frame-Options"), $"{path} must not forbid framing");
                Assert.Equal(AddinFramingTests.OutlookAncestors, AddinFramingTests.FrameAncestors(res));
            }
        }
    }
}
