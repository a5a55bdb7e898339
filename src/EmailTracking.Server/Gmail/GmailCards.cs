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

/// <summary>The URLs a card points at: the endpoints its buttons call back, and the web app its links open.</summary>
public sealed record CardLinks(string HomepageUrl, string WebAppUrl, string ComposeUrl);

/// <summary>A tracked message in the opened conversation, with what each recipient did (people; machines and the sender's own views counted apart).</summary>
public sealed record ConversationMessage(string Subject, DateTimeOffset? SentAt, bool PerRecipient, IReadOnlyList<RecipientActivity> Recipients,
    RecipientActivity Shared);

/// <param name="MachineEvents">Machines' opens, clicks and document events (not the sender's own).</param>
/// <param name="OwnViews">The sender's own opens, clicks and document events (verdict self), apart from the machines'.</param>
public sealed record RecipientActivity(string Address, int Opens, int Clicks, int PagesRead, int Downloads, bool Replied,
    DateTimeOffset? LastOpenAt, DateTimeOffset? LastClickAt, int MachineEvents, int OwnViews = 0);

/// <summary>The draft's recipients as Gmail gives them with draftAccess METADATA.</summary>
public sealed record DraftRecipients(IReadOnlyList<string> To, IReadOnlyList<string> Cc, IReadOnlyList<string> Bcc)
{
    public int Count => To.Count + Cc.Count + Bcc.Count;
}

/// <summary>The documents the compose card offers: the user's library (an admin's: the team's), or why the plan does not allow it.</summary>
public sealed record ComposeLibrary(string? Refused, IReadOnlyList<LibraryDocument> Documents);

public sealed record LibraryDocument(Guid Id, string Name, int Pages);

/// <summary>A tracked document link to insert: the URL of the viewer and what the link says.</summary>
public sealed record DocumentInsert(string Url, string Name, int Pages);

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
    public const string TrackAction = "track";
    public const string InsertContentAction = "insert-content";
    /// <summary>
    /// The compose card's buttons carry the id the draft's tracked message gets (or has): whichever button comes first
    /// registers it, the other finds it, so "Track" and "Insert tracked content" in any order make one tracked message.
    /// </summary>
    public const string MessageParameter = "message";
    public const string SubjectInput = "subject";
    public const string DocumentsInput = "documents";
    /// <summary>The library's most recent documents offered in the compose card (one checkbox list widget).</summary>
    public const int MaxLibraryChoices = 50;

    /// <summary>What Gmail allows, said where the user decides: one body goes to everyone on the draft.</summary>
    public const string OneBodyNote = "Gmail sends one body to all recipients, so opens are counted per message, not per person. " +
                                      "Clicks and replies still name who acted when they can.";

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

    /// <summary>Most messages and recipients a contextual card lists, so that it stays under the widget limit.</summary>
    public const int MaxConversationMessages = 4;
    public const int MaxRecipientsPerMessage = 20;

    /// <summary>The card beside an opened message: each tracked message of the conversation, what each recipient did.</summary>
    public static JsonObject Conversation(IReadOnlyList<ConversationMessage> messages, CardLinks links, TimeSpan offset)
    {
        if (messages.Count == 0)
        {
            return Card("This conversation", new JsonArray(Section(null, new JsonArray(
                Paragraph("No tracked email in this conversation. Track the next one from the compose window."),
                Buttons(Button("Open the web app", OpenLink(links.WebAppUrl)))))));
        }
        var sections = new JsonArray();
        foreach (var m in messages.Take(MaxConversationMessages))
        {
            var widgets = new JsonArray();
            if (!m.PerRecipient)
            {
                // One body for everyone: opens belong to the message, not to a person.
                widgets.Add(Paragraph("One copy for all recipients: opens are per message. " + Escape(string.Join(", ", m.Recipients.Select(r => r.Address)))));
                widgets.Add(Activity("Everyone", m.Shared, offset));
            }
            else
            {
                foreach (var r in m.Recipients.Take(MaxRecipientsPerMessage)) widgets.Add(Activity(r.Address, r, offset));
                if (m.Recipients.Count > MaxRecipientsPerMessage)
                    widgets.Add(Paragraph($"and {m.Recipients.Count - MaxRecipientsPerMessage} more recipients: see the web app."));
            }
            var sent = m.SentAt is { } at ? " · sent " + at.ToOffset(offset).ToString("d MMM HH:mm", CultureInfo.InvariantCulture) : "";
            sections.Add(Section(Escape(m.Subject.Length == 0 ? "(no subject)" : m.Subject) + sent, widgets));
        }
        sections.Add(Section(null, new JsonArray(Buttons(Button("Open the web app", OpenLink(links.WebAppUrl))))));
        return Card("This conversation", sections);
    }

    static JsonObject Activity(string who, RecipientActivity a, TimeSpan offset)
    {
        var parts = new List<string> { Plural(a.Opens, "open"), Plural(a.Clicks, "click") };
        if (a.PagesRead > 0) parts.Add(Plural(a.PagesRead, "page") + " read");
        if (a.Downloads > 0) parts.Add(Plural(a.Downloads, "download"));
        if (a.Replied) parts.Add("replied");
        var times = new List<string>();
        if (a.LastOpenAt is { } o) times.Add("last open " + o.ToOffset(offset).ToString("d MMM HH:mm", CultureInfo.InvariantCulture));
        if (a.LastClickAt is { } c) times.Add("last click " + c.ToOffset(offset).ToString("d MMM HH:mm", CultureInfo.InvariantCulture));
        // The sender's own views are no machine's: named apart ("1 machine event and 1 of your own views set apart").
        if (a.MachineEvents + a.OwnViews > 0) times.Add($"{Web.Display.HiddenWords(a.MachineEvents, a.OwnViews)} set apart");
        var d = new JsonObject { ["topLabel"] = Escape(who), ["text"] = string.Join(" · ", parts), ["wrapText"] = true };
        if (times.Count > 0) d["bottomLabel"] = string.Join(" · ", times);
        return new JsonObject { ["decoratedText"] = d };
    }

    /// <summary>
    /// The compose action's card: who the draft goes to, what tracking means here, the button that tracks it, and the
    /// library's documents to insert as tracked links (or why the plan does not allow it).
    /// </summary>
    public static JsonObject Compose(DraftRecipients draft, ComposeLibrary library, Guid messageKey, CardLinks links)
    {
        if (draft.Count == 0)
        {
            return Card("Track this email", new JsonArray(Section(null, new JsonArray(
                Paragraph("Add recipients to the draft first, then open EmailTracking from the compose window again."),
                Paragraph(OneBodyNote)))));
        }
        var who = new JsonArray();
        foreach (var (label, list) in new[] { ("To", draft.To), ("Cc", draft.Cc), ("Bcc", draft.Bcc) })
        {
            if (list.Count == 0) continue;
            // A long list is shown as a count: a card holds at most 100 widgets.
            who.Add(new JsonObject
            {
                ["decoratedText"] = new JsonObject
                {
                    ["topLabel"] = label,
                    ["text"] = Escape(list.Count <= 10 ? string.Join(", ", list) : $"{string.Join(", ", list.Take(10))} and {list.Count - 10} more"),
                    ["wrapText"] = true,
                },
            });
        }

        var content = new JsonArray();
        if (library.Refused is { } refused)
        {
            content.Add(Paragraph(Escape(refused)));
        }
        else if (library.Documents.Count == 0)
        {
            content.Add(Paragraph("Your library is empty. Upload a PDF, Word or PowerPoint file in the web app, then open this again."));
            content.Add(Buttons(Button("Open the library", OpenLink(links.WebAppUrl + "documents"))));
        }
        else
        {
            var items = new JsonArray();
            foreach (var d in library.Documents.Take(MaxLibraryChoices))
            {
                items.Add(new JsonObject
                {
                    ["text"] = $"{d.Name} ({Plural(d.Pages, "page")})", ["value"] = d.Id.ToString(), ["selected"] = false,
                });
            }
            content.Add(new JsonObject
            {
                ["selectionInput"] = new JsonObject { ["name"] = DocumentsInput, ["label"] = "Documents", ["type"] = "CHECK_BOX", ["items"] = items },
            });
            content.Add(Paragraph("The links go in at the cursor. Each reading is tracked page by page; inserting also tracks " +
                                  "this email if you have not yet."));
            content.Add(Buttons(Button("Insert tracked content", ComposeCallBack(links, InsertContentAction, messageKey))));
        }

        return Card("Track this email", new JsonArray(
            Section("Recipients", who),
            Section(null, new JsonArray(
                Paragraph("Tracking adds an invisible image at the end of the body: we see when the mail is opened, and set " +
                          "machines (image proxies, scanners) apart from people."),
                Paragraph(OneBodyNote),
                new JsonObject
                {
                    ["textInput"] = new JsonObject
                    {
                        ["name"] = SubjectInput, ["label"] = "Subject (as you will send it)", ["type"] = "SINGLE_LINE",
                    },
                },
                Buttons(Button("Track this email", ComposeCallBack(links, TrackAction, messageKey))))),
            Section("Tracked content", content)));
    }

    /// <summary>The compose callback's answer: the pixel inserted at the end of the draft (Gmail requires updateBody.type).</summary>
    public static JsonObject InsertPixel(string pixelUrl) => UpdateBody(PixelHtml(pixelUrl), "INSERT_AT_END");

    /// <summary>
    /// Tracked document links inserted at the cursor, one paragraph each; with the pixel too when inserting them is what
    /// tracked the email.
    /// </summary>
    public static JsonObject InsertContent(IReadOnlyList<DocumentInsert> documents, string? pixelUrl)
    {
        var html = new System.Text.StringBuilder();
        foreach (var d in documents)
        {
            html.Append("<p><a href=\"").Append(WebUtility.HtmlEncode(d.Url)).Append("\">")
                .Append(WebUtility.HtmlEncode(d.Name)).Append(" (").Append(Plural(d.Pages, "page")).Append(")</a></p>");
        }
        if (pixelUrl is not null) html.Append(PixelHtml(pixelUrl));
        return UpdateBody(html.ToString(), "IN_PLACE_INSERT");
    }

    /// <summary>A callback's answer that changes nothing but says something (a toast in Gmail).</summary>
    public static JsonObject Notify(string text) => new()
    {
        ["renderActions"] = new JsonObject { ["action"] = new JsonObject { ["notification"] = new JsonObject { ["text"] = text } } },
    };

    static string PixelHtml(string pixelUrl) =>
        $"<img src=\"{WebUtility.HtmlEncode(pixelUrl)}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">";

    static JsonObject UpdateBody(string html, string type) => new()
    {
        ["renderActions"] = new JsonObject
        {
            ["hostAppAction"] = new JsonObject
            {
                ["gmailAction"] = new JsonObject
                {
                    ["updateDraftActionMarkup"] = new JsonObject
                    {
                        ["updateBody"] = new JsonObject
                        {
                            ["insertContents"] = new JsonArray(new JsonObject { ["content"] = html, ["contentType"] = "MUTABLE_HTML" }),
                            ["type"] = type,
                        },
                    },
                },
            },
        },
    };

    /// <summary>
    /// The Gmail user's address is not one of ours: the button opens the web app's link page in a window (sign in,
    /// confirm); when it closes, Gmail reloads the add-on, which now knows the address and never shows this card again.
    /// </summary>
    public static JsonObject LinkAccount(string gmailAddress, string linkUrl, CardLinks links) =>
        Card("Link your account", new JsonArray(Section(null, new JsonArray(
            Paragraph($"<b>{Escape(gmailAddress)}</b> is not linked to an EmailTracking account yet."),
            Paragraph("Sign in to EmailTracking in the window that opens and confirm: this address becomes one of your " +
                      "account's addresses, so the mail you send from it is tracked as yours. You do this once."),
            Buttons(
                Button("Link this address", new JsonObject
                {
                    ["openLink"] = new JsonObject { ["url"] = linkUrl, ["openAs"] = "OVERLAY", ["onClose"] = "RELOAD" },
                }),
                Button("Refresh", CallBack(links, RefreshAction))),
            Paragraph("No account yet? Ask your team admin to add you.")))));

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

    static JsonObject ComposeCallBack(CardLinks links, string action, Guid messageKey) => new()
    {
        ["action"] = new JsonObject
        {
            ["function"] = links.ComposeUrl,
            ["parameters"] = new JsonArray(
                new JsonObject { ["key"] = ActionParameter, ["value"] = action },
                new JsonObject { ["key"] = MessageParameter, ["value"] = messageKey.ToString() }),
        },
    };

    static string Plural(int n, string word) => n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? word : word + "s");

    /// <summary>Card text is simple HTML: addresses and messages are escaped.</summary>
    /// <summary>
    /// Text for a card, HTML-encoded, with every invisible formatting character (a U+202E RIGHT-TO-LEFT OVERRIDE, a
    /// zero-width space) shown as U+FFFD: a card's text has no element that could isolate it as the web app's &lt;bdi&gt;
    /// does, so an override in a recipient's name or a subject would turn round the card's own words beside it.
    /// </summary>
    static string Escape(string text) => WebUtility.HtmlEncode(Web.Display.Plain(text));
}
