using System.Security.Claims;
using EmailTracking.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Accounts;

/// <summary>Puts the team and role on the sign-in cookie, so pages and APIs read them without a query.</summary>
public sealed class ClaimsFactory(UserManager<User> users, IOptions<IdentityOptions> options)
    : UserClaimsPrincipalFactory<User>(users, options)
{
    protected override async Task<ClaimsIdentity> GenerateClaimsAsync(User user)
    {
        var identity = await base.GenerateClaimsAsync(user);
        identity.AddClaim(new Claim(CurrentUser.TeamClaim, user.TeamId.ToString()));
        identity.AddClaim(new Claim(ClaimTypes.Role, user.Role.ToString()));
        // Read by PasswordChangeRequired; the cookie issued again once they changed it (the Password page) has none.
        if (user.MustChangePassword) identity.AddClaim(new Claim(PasswordChangeRequired.Claim, "true"));
        return identity;
    }
}
