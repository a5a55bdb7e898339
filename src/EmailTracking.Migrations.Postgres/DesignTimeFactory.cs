using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace EmailTracking.Migrations.Postgres;

/// <summary>Used by `dotnet ef migrations add` only; no database is contacted to add a migration.</summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<AppDbContext>
{
    public AppDbContext CreateDbContext(string[] args)
    {
        var b = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(b, DatabaseProvider.Postgres, "Host=localhost;Database=design;Username=design");
        return new AppDbContext(b.Options);
    }
}
