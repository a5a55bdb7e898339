using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Data;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

/// <summary>The content library: upload, add to email, preview, allow downloads, remove.</summary>
[DocumentUploadLimit]
public sealed class DocumentsModel(AppDbContext db, ContentLibrary library, IOptions<ContentOptions> options, IOptions<TrackingOptions> tracking,
    TimeProvider clock) : PageModel
{
    /// <summary>As many documents as a page lists; the others are on the pages before and after it.</summary>
    public const int PageSize = 100;

    /// <summary>The documents' order: the newest upload first, then by id.</summary>
    static readonly ListOrder<ContentItem> Order = new(c => c.CreatedAt, c => c.Id);

    /// <summary>The page of documents listed after this one (the "Older" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Older { get; set; }
    /// <summary>The page of documents listed before this one (the "Newer" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Newer { get; set; }

    /// <summary>The page of documents shown, where it is among them all, and the way to the others.</summary>
    public ListPage<ContentItem> Shown { get; private set; } = new([], 0, 0, null, null);
    public List<ContentItem> Items => Shown.Rows;
    public UploadFailure? PlanProblem { get; private set; }
    public UploadFailure? Failure { get; private set; }
    public long MaxUploadBytes => options.Value.MaxUploadBytes;
    [TempData] public string? Added { get; set; }

    /// <summary>The link just made by "add to email", to copy into a message.</summary>
    public (Guid ContentId, string Url, string Html)? NewLink { get; private set; }

    async Task LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        PlanProblem = await library.CheckPlanAsync(me, ct);
        // The page, its position and the total read from one snapshot, so that they agree.
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        Shown = await Order.PageAsync(ContentStats.Visible(db, me).Where(c => c.DeletedAt == null).AsNoTracking(), Older, Newer, PageSize, ct);
    }

    /// <summary>The links to the documents listed before and after this page.</summary>
    public ListPager Pager => ListPager.For("Pages of documents", "/documents", Shown);

    /// <summary>Back to the page the form was sent from (its cursor is in the form's address).</summary>
    object SamePage => new { older = Older, newer = Newer };

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(ct);

    public async Task<IActionResult> OnPostUploadAsync(IFormFile? file, bool allowDownload, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (file is null || file.Length == 0 && string.IsNullOrEmpty(file.FileName))
        {
            Failure = new UploadFailure(400, "No file chosen", "Choose a PDF, Word or PowerPoint file to upload.");
        }
        else
        {
            await using var stream = file.OpenReadStream();
            var (item, failure) = await library.UploadAsync(me, file.FileName, stream, allowDownload, ct);
            if (item is not null)
            {
                Added = $"{item.Name} was added ({item.PageCount} {(item.PageCount == 1 ? "page" : "pages")}).";
                return RedirectToPage();
            }
            Failure = failure;
        }
        Response.StatusCode = Failure!.Status;
        await LoadAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostLinkAsync(Guid id, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        await LoadAsync(ct);
        if (PlanProblem is not null) { Response.StatusCode = 403; return Page(); }
        // Any of the user's documents, not only those on the page shown (an old one was not found).
        var item = await ContentStats.Visible(db, me).AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.DeletedAt == null, ct);
        if (item is null) return NotFound();
        var link = await ContentLinks.CreateShareAsync(db, item, me.Id, clock.GetUtcNow(), ct);
        var url = TrackingUrls.For(HttpContext, tracking.Value).Document(link.Token);
        NewLink = (item.Id, url, ContentLinks.Html(url, item));
        return Page();
    }

    /// <summary>Opens the document as recipients see it; this browser carries the sender's device mark, so nothing is recorded.</summary>
    public async Task<IActionResult> OnPostPreviewAsync(Guid id, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var item = await ContentStats.Visible(db, me).FirstOrDefaultAsync(c => c.Id == id && c.DeletedAt == null, ct);
        if (item is null) return NotFound();
        // A link that still opens: one turned off or expired would show the sender that page instead of the document.
        var now = clock.GetUtcNow();
        var link = await db.ContentLinks.Where(l => l.ContentId == id && l.UserId == me.Id && l.TrackedMessageId == null
                && l.DisabledAt == null && (l.ExpiresAt == null || l.ExpiresAt > now))
            .OrderBy(l => l.CreatedAt).FirstOrDefaultAsync(ct);
        link ??= await ContentLinks.CreateShareAsync(db, item, me.Id, clock.GetUtcNow(), ct);
        return Redirect("/d/" + link.Token);
    }

    public async Task<IActionResult> OnPostDownloadsAsync(Guid id, bool allow, CancellationToken ct)
    {
        var item = await ContentStats.Visible(db, CurrentUser.Required(User)).FirstOrDefaultAsync(c => c.Id == id && c.DeletedAt == null, ct);
        if (item is null) return NotFound();
        item.AllowDownload = allow;
        await db.SaveChangesAsync(ct);
        return RedirectToPage(SamePage);
    }

    public async Task<IActionResult> OnPostDeleteAsync(Guid id, CancellationToken ct)
    {
        var item = await ContentStats.Visible(db, CurrentUser.Required(User)).FirstOrDefaultAsync(c => c.Id == id && c.DeletedAt == null, ct);
        if (item is null) return NotFound();
        await library.DeleteAsync(item, ct);
        Added = $"{item.Name} was removed; its links now say so.";
        return RedirectToPage(SamePage);
    }
}

/// <summary>
/// The upload's limits (<see cref="PostBodyLimitAttribute"/>), set before antiforgery reads the form: the form may
/// weigh Content:MaxUploadBytes and a megabyte more, and so may its file (the library then refuses a file over the
/// limit by name). A post over that is answered 413 at once; the error page (<see cref="ErrorModel"/>) explains it.
/// The page's other posts are small and keep the server's defaults.
/// </summary>
public sealed class DocumentUploadLimitAttribute : PostBodyLimitAttribute
{
    protected override long? MaxBodyBytes(HttpContext http) =>
        string.Equals(http.Request.Query["handler"], "Upload", StringComparison.OrdinalIgnoreCase) ? ContentLibrary.MaxFormBytes(MaxUploadBytes(http)) : null;

    protected override PostTooLarge TooLarge(HttpContext http) => new("upload", "The document is too large", "The document was too large to upload",
        ContentLibrary.FormTooLarge(MaxUploadBytes(http)), "A file this large is not read at all. Compress the document or split it, and upload it again.",
        "/documents", "Back to Documents");

    static long MaxUploadBytes(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<ContentOptions>>().Value.MaxUploadBytes;
}
