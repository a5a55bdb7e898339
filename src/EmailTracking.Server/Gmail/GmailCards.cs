using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace EmailTracking.Server.Gmail;

/// <summary>Today's activity for the homepage: human counts, machine counts apart, and who engaged most.</summary>
public sealed record TodayActivity(
    DateTimeOffset Since, ActivityCounts Humans, ActivityCounts Machines, IReadOnlyList<EngagedRecipient> TopRecipients);

/// <summary>Opens, link clicks, document views, pages read, downloads and replies.</summary>
public sealed record ActivityCounts(int Opens, int Clicks, int DocumentViews, int PagesRead, int Downloads, int Replies)
{
    public static readonly ActivityCounts None = new(0, 0, 0, 0, 0, 0);
    public int Total => Opens + Clicks + DocumentViews + PagesRead + Downloads + Replies;
}

public sealed record EngagedRecipient(string Address, int Events, DateTimeOffset LastAt);

/// <summary>The URLs a card points at: the endpoint its buttons call back, and the web app its links open.</summary>
public sealed record CardLinks(string HomepageUrl, string WebAppUrl);

/// <summary>
/// Card JSON for the Gmail add-on, built as pure functions from data (shapes from Google's card reference: a
/// RenderAction with a pushCard for a trigger, <c>{"renderActions": …}</c> with an updateCard for a button callback).
/// </summary>
public static class GmailCards
{
    public const string Title = "EmailTracking";
    /// <summary>Google drops widgets beyond 100 a card.</summary>
    public const int MaxWidgets = 100;

    public const string ActionParameter = "action";
    public const string RefreshAction = "refresh";
    public const string ShowMachinesAction = "show-machines";
    public const string HideMachinesAction = "hide-machines";

    /// <summary>What a trigger (homepage, message opened, compose opened) answers.</summary>
    public static JsonObject Push(JsonObject card) =>
        new() { ["action"] = new JsonObject { ["navigations"] = new JsonArray(new JsonObject { ["pushCard"] = card }) } };

    /// <summary>What a button callback answers: the card replaced in place.</summary>
    public static JsonObject Update(JsonObject card) =>
        new()
        {
            ["renderActions"] = new JsonObject { ["action"] = new JsonObject { ["navigations"] = new JsonArray(new JsonObject { ["updateCard"] = card }) } },
        };

    public static JsonObject Homepage(TodayActivity today, bool showMachines, CardLinks links, TimeSpan offset)
    {
        var h = today.Humans;
        var activity = new JsonArray
        {
            Counter("Opens", h.Opens),
            Counter("Link clicks", h.Clicks),
            Counter("Document reads", h.DocumentViews, $"{Plural(h.PagesRead, "page")} read · {Plural(h.Downloads, "download")}"),
            Counter("Replies", h.Replies),
        };
        if (h.Total == 0) activity.Insert(0, Paragraph("No one has opened, clicked, read or answered your tracked emails yet today."));

        var sections = new JsonArray(Section("Today (people)", activity));

        var m = today.Machines;
        var machines = new JsonArray();
        if (showMachines)
        {
            machines.Add(Paragraph("Image proxies, link scanners and bots: counted apart, never as people."));
            machines.Add(Counter("Machine opens", m.Opens));
            machines.Add(Counter("Machine clicks", m.Clicks));
            machines.Add(Counter("Machine document reads", m.DocumentViews, $"{Plural(m.PagesRead, "page")} · {Plural(m.Downloads, "download")}"));
            machines.Add(Buttons(Button("Hide machines", CallBack(links, HideMachinesAction))));
        }
        else
        {
            machines.Add(Paragraph($"{Plural(m.Total, "machine event")} today (proxies, scanners, bots), not counted above."));
            machines.Add(Buttons(Button("Show machine counts", CallBack(links, ShowMachinesAction))));
        }
        sections.Add(Section("Machines", machines));

        var top = new JsonArray();
        if (today.TopRecipients.Count == 0) top.Add(Paragraph("Nobody yet."));
        foreach (var r in today.TopRecipients)
        {
            top.Add(new JsonObject
            {
                ["decoratedText"] = new JsonObject
                {
                    ["text"] = Escape(r.Address),
                    ["bottomLabel"] = $"{Plural(r.Events, "action")} · last at {r.LastAt.ToOffset(offset).ToString("HH:mm", CultureInfo.InvariantCulture)}",
                    ["wrapText"] = true,
                },
            });
        }
        sections.Add(Section("Most engaged recipients", top));

        sections.Add(Section(null, new JsonArray(Buttons(
            Button("Refresh", CallBack(links, showMachines ? ShowMachinesAction : RefreshAction)),
            Button("Open the web app", OpenLink(links.WebAppUrl))))));

        return Card("Today", sections);
    }

    /// <summary>The Gmail user's address is not one of ours: they link it by adding it to their account in the web app.</summary>
    public static JsonObject LinkAccount(string gmailAddress, CardLinks links) =>
        Card("Link your account", new JsonArray(Section(null, new JsonArray(
            Paragraph($"<b>{Escape(gmailAddress)}</b> is not linked to an EmailTracking account yet."),
            Paragraph("Open the web app and sign in. If your account uses another address, add this one to it as an alias " +
                      "(API: POST /api/me/addresses), or ask your team admin for an account; then refresh."),
            Buttons(
                Button("Open the web app", OpenLink(links.WebAppUrl)),
                Button("Refresh", CallBack(links, RefreshAction)))))));

    /// <summary>A part of the add-on that is not built yet says so plainly rather than failing.</summary>
    public static JsonObject ComingSoon(string what, CardLinks links) =>
        Card(what, new JsonArray(Section(null, new JsonArray(
            Paragraph($"{Escape(what)} is coming soon in the add-on. Until then, the web app shows every tracked email and its activity."),
            Buttons(Button("Open the web app", OpenLink(links.WebAppUrl)))))));

    /// <summary>A failure the user can act on answers a card, not an HTTP error.</summary>
    public static JsonObject Error(string message, CardLinks links) =>
        Card("Something went wrong", new JsonArray(Section(null, new JsonArray(
            Paragraph(Escape(message)),
            Buttons(Button("Open the web app", OpenLink(links.WebAppUrl)))))));

    public static int CountWidgets(JsonObject card) =>
        card["sections"]!.AsArray().Sum(s => s!["widgets"]!.AsArray().Count);

    // ---- building blocks ----

    static JsonObject Card(string subtitle, JsonArray sections)
    {
        var card = new JsonObject
        {
            ["header"] = new JsonObject { ["title"] = Title, ["subtitle"] = subtitle },
            ["sections"] = sections,
        };
        if (CountWidgets(card) > MaxWidgets) throw new InvalidOperationException($"A card holds at most {MaxWidgets} widgets.");
        return card;
    }

    static JsonObject Section(string? header, JsonArray widgets)
    {
        var s = new JsonObject();
        if (header is not null) s["header"] = header;
        s["widgets"] = widgets;
        return s;
    }

    static JsonObject Paragraph(string html) => new() { ["textParagraph"] = new JsonObject { ["text"] = html } };

    static JsonObject Counter(string label, int count, string? bottom = null)
    {
        var d = new JsonObject { ["topLabel"] = label, ["text"] = count.ToString(CultureInfo.InvariantCulture) };
        if (bottom is not null) d["bottomLabel"] = bottom;
        return new JsonObject { ["decoratedText"] = d };
    }

    static JsonObject Buttons(params JsonObject[] buttons) => new() { ["buttonList"] = new JsonObject { ["buttons"] = new JsonArray(buttons) } };

    static JsonObject Button(string text, JsonObject onClick) => new() { ["text"] = text, ["onClick"] = onClick };

    static JsonObject OpenLink(string url) => new() { ["openLink"] = new JsonObject { ["url"] = url, ["openAs"] = "FULL_SIZE" } };

    static JsonObject CallBack(CardLinks links, string action) => new()
    {
        ["action"] = new JsonObject
        {
            ["function"] = links.HomepageUrl,
            ["parameters"] = new JsonArray(new JsonObject { ["key"] = ActionParameter, ["value"] = action }),
        },
    };

    static string Plural(int n, string word) => n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? word : word + "s");

    /// <summary>Card text is simple HTML: addresses and messages are escaped.</summary>
    static string Escape(string text) => WebUtility.HtmlEncode(text);
}
