using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

public sealed class TokensModel(AppDbContext db, AccountService accounts, TimeProvider clock) : PageModel
{
    public List<ApiToken> Tokens { get; private set; } = [];
    public string? NewToken { get; private set; }
    [BindProperty] public string? Name { get; set; }
    /// <summary>The add-ins' default for "Track this email" (an unticked box posts nothing: false).</summary>
    [BindProperty] public bool TrackByDefault { get; set; }
    public bool Saved { get; private set; }

    public async Task OnGetAsync(bool saved = false)
    {
        Saved = saved;
        await LoadAsync();
    }

    public async Task<IActionResult> OnPostSettingsAsync()
    {
        var me = CurrentUser.Required(User);
        await db.Users.Where(u => u.Id == me.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.TrackByDefault, TrackByDefault));
        return RedirectToPage(new { saved = true });
    }

    public async Task<IActionResult> OnPostCreateAsync()
    {
        var name = Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            ModelState.AddModelError(nameof(Name), "Give the token a name of 1 to 100 characters.");
        }
        else
        {
            NewToken = (await accounts.CreateTokenAsync(CurrentUser.Required(User).Id, name)).Token;
        }
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync(Guid id)
    {
        var me = CurrentUser.Required(User);
        await db.ApiTokens.Where(t => t.Id == id && t.UserId == me.Id && t.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, clock.GetUtcNow()));
        return RedirectToPage();
    }

    async Task LoadAsync()
    {
        var me = CurrentUser.Required(User);
        Tokens = await db.ApiTokens.Where(t => t.UserId == me.Id).OrderBy(t => t.Name).AsNoTracking().ToListAsync();
        TrackByDefault = await db.Users.Where(u => u.Id == me.Id).Select(u => u.TrackByDefault).FirstAsync();
    }
}
