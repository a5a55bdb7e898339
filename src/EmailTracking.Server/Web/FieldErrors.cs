using Microsoft.AspNetCore.Mvc.Rendering;
using Microsoft.AspNetCore.Mvc.ViewFeatures;
using Microsoft.AspNetCore.Razor.TagHelpers;

namespace EmailTracking.Server.Web;

/// <summary>
/// A refused form's fields tied to their problems, for screen readers: each field with a problem gets
/// <c>aria-invalid="true"</c> and <c>aria-describedby</c> naming the problem's text, which the shared partials render
/// with the ids made here (_FieldErrors under a field, _Errors above a form). Done once, by the tag helpers below, for
/// every page's form. A page's problems are its <see cref="IFieldErrors.Errors"/> when it keeps its own (the pages that
/// render _FieldErrors), else its ModelState (the pages that render _Errors).
/// </summary>
public static class FieldErrors
{
    /// <summary>The id of the list of one field's problems (_FieldErrors); "" or "form" is the whole form's.</summary>
    public static string Id(string key) => "errors-" + Clean(key.Length == 0 ? "form" : key);

    /// <summary>The id of one of a field's problems in the summary above a form (_Errors).</summary>
    public static string Id(string key, int index) => $"{Id(key)}-{index}";

    static string Clean(string key) => string.Concat(key.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' ? c : '_'));

    /// <summary>
    /// Whether the problems under <paramref name="key"/> are this field's: the field's name is the key (Email, email), or
    /// ends with it after a dot (Form.ImapHost for imapHost). "" is the whole form's, no field's.
    /// </summary>
    public static bool IsFor(string key, string field) =>
        key.Length > 0 && (string.Equals(key, field, StringComparison.OrdinalIgnoreCase)
                           || field.EndsWith("." + key, StringComparison.OrdinalIgnoreCase));

    /// <summary>The ids of the problems the page shows for a field of this name (or <c>errors-for</c> key); none when it has none.</summary>
    public static List<string> IdsFor(ViewContext view, string field)
    {
        if (view.ViewData.Model is IFieldErrors page)
        {
            return [.. page.Errors.Where(e => e.Value.Length > 0 && IsFor(e.Key, field)).Select(e => Id(e.Key))];
        }
        return [.. view.ViewData.ModelState.Where(e => e.Value is { Errors.Count: > 0 } && IsFor(e.Key, field))
            .SelectMany(e => Enumerable.Range(0, e.Value!.Errors.Count).Select(i => Id(e.Key, i)))];
    }
}

/// <summary>A page that keeps its problems by field itself (and shows each with _FieldErrors) rather than in ModelState.</summary>
public interface IFieldErrors
{
    /// <summary>Problems by field key ("to", "subject"…), "" for the whole form.</summary>
    IReadOnlyDictionary<string, string[]> Errors { get; }
}

/// <summary>
/// A form that was not the one posted (another handler's: a Team row's role form beside the form to add a member, both
/// with a Role field) leaves its fields alone: the problems are the posted form's.
/// </summary>
[HtmlTargetElement("form")]
public sealed class FormFieldErrorsTagHelper : TagHelper
{
    /// <summary>What the form's fields read (<see cref="TagHelperContext.Items"/>): false when the problems are not theirs.</summary>
    internal static readonly object ItemKey = new();

    [HtmlAttributeNotBound, ViewContext] public ViewContext ViewContext { get; set; } = null!;

    public override void Init(TagHelperContext context)
    {
        var http = ViewContext.HttpContext;
        var posted = Convert.ToString(ViewContext.RouteData.Values["handler"], System.Globalization.CultureInfo.InvariantCulture);
        if (string.IsNullOrEmpty(posted)) posted = http.Request.Query["handler"].FirstOrDefault();
        if (Handler(context) is { } mine && !string.Equals(mine, posted, StringComparison.OrdinalIgnoreCase)) context.Items[ItemKey] = false;
    }

    /// <summary>The handler the form posts to: its asp-page-handler, or the handler in its action's query; null for the page's default.</summary>
    static string? Handler(TagHelperContext context)
    {
        if (context.AllAttributes["asp-page-handler"]?.Value?.ToString() is { Length: > 0 } named) return named;
        if (context.AllAttributes["action"]?.Value?.ToString() is { } action && action.IndexOf('?') is var q and >= 0)
        {
            var handler = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(action[q..])["handler"].FirstOrDefault();
            return string.IsNullOrEmpty(handler) ? null : handler;
        }
        return null;
    }
}

/// <summary>
/// A form field (input, select, textarea, or any element with <c>errors-for</c>, such as Compose's editor) with a
/// problem: <c>aria-invalid="true"</c>, and <c>aria-describedby</c> naming the problem's text. <c>errors-for="key"</c>
/// names the problems' key where the field's name is not it (Compose's MailboxId has "mailbox"). After the other tag
/// helpers, so that a name asp-for writes is there.
/// </summary>
[HtmlTargetElement("input", TagStructure = TagStructure.WithoutEndTag)]
[HtmlTargetElement("select")]
[HtmlTargetElement("textarea")]
[HtmlTargetElement(Attributes = ErrorsForAttribute)]
public sealed class FieldErrorsTagHelper : TagHelper
{
    public const string ErrorsForAttribute = "errors-for";

    public override int Order => 1000;

    [HtmlAttributeNotBound, ViewContext] public ViewContext ViewContext { get; set; } = null!;

    /// <summary>The key of the field's problems, where its name is not it.</summary>
    [HtmlAttributeName(ErrorsForAttribute)] public string? ErrorsFor { get; set; }

    public override void Process(TagHelperContext context, TagHelperOutput output)
    {
        if (context.Items.TryGetValue(FormFieldErrorsTagHelper.ItemKey, out var ours) && ours is false) return;
        if (ViewContext.ViewData.Model is not IFieldErrors && ViewContext.ViewData.ModelState.IsValid) return;
        if (string.Equals(Text(output.Attributes["type"]), "hidden", StringComparison.OrdinalIgnoreCase)) return;
        var field = ErrorsFor ?? Text(output.Attributes["name"]);
        if (string.IsNullOrEmpty(field)) return;
        var ids = FieldErrors.IdsFor(ViewContext, field);
        if (ids.Count == 0) return;
        output.Attributes.SetAttribute("aria-invalid", "true");
        if (Text(output.Attributes["aria-describedby"]) is { Length: > 0 } described) ids.Insert(0, described);
        output.Attributes.SetAttribute("aria-describedby", string.Join(' ', ids));
    }

    /// <summary>An attribute's value as text, whether Razor gave it as a string or as HTML content (a value with @ in it).</summary>
    static string? Text(TagHelperAttribute? attribute)
    {
        switch (attribute?.Value)
        {
            case null: return null;
            case string s: return s;
            case Microsoft.AspNetCore.Html.IHtmlContent html:
                using (var w = new StringWriter())
                {
                    html.WriteTo(w, System.Text.Encodings.Web.HtmlEncoder.Default);
                    return System.Net.WebUtility.HtmlDecode(w.ToString());
                }
            default: return Convert.ToString(attribute.Value, System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
