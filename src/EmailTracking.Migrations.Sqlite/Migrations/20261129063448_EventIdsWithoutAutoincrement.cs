using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <summary>
    /// Rebuilds the events table with its ids as plain rowids instead of AUTOINCREMENT (see AppDbContext): the same ids,
    /// the same indexes. EF Core 10.0's own snapshot writer leaves out a strategy of None, and the SQLite conventions
    /// then put AUTOINCREMENT back when the model is read from it: the snapshot and the designers carry the annotation,
    /// written by this project's DesignTimeServices (this migration's by hand, before it existed).
    /// </summary>
    public partial class EventIdsWithoutAutoincrement : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder) => Rebuild(migrationBuilder, autoincrement: false);

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder) => Rebuild(migrationBuilder, autoincrement: true);

        // Written out rather than EF's table rebuild, which commits the copy, the swap and the indexes as three
        // transactions (a crash between them left ef_temp_Events behind and the next start failing on it). Nothing
        // refers to Events by a foreign key, so one transaction does it all.
        static void Rebuild(MigrationBuilder migrationBuilder, bool autoincrement)
        {
            const string Columns = "\"Id\", \"ContentId\", \"CopyId\", \"FromAddress\", \"Ip\", \"Kind\", \"LinkId\", \"Method\", \"OccurredAt\", \"Page\", \"Reason\", \"RecipientId\", \"TeamId\", \"TrackedMessageId\", \"Url\", \"UserAgent\", \"UserId\", \"Verdict\"";
            migrationBuilder.Sql($"""
                CREATE TABLE "ef_temp_Events" (
                    "Id" INTEGER NOT NULL CONSTRAINT "PK_Events" PRIMARY KEY{(autoincrement ? " AUTOINCREMENT" : "")},
                    "ContentId" BLOB NULL,
                    "CopyId" BLOB NULL,
                    "FromAddress" TEXT NULL,
                    "Ip" TEXT NULL,
                    "Kind" INTEGER NOT NULL,
                    "LinkId" BLOB NULL,
                    "Method" TEXT NULL,
                    "OccurredAt" INTEGER NOT NULL,
                    "Page" INTEGER NULL,
                    "Reason" TEXT NOT NULL,
                    "RecipientId" BLOB NULL,
                    "TeamId" BLOB NOT NULL,
                    "TrackedMessageId" BLOB NOT NULL,
                    "Url" TEXT NULL,
                    "UserAgent" TEXT NULL,
                    "UserId" BLOB NOT NULL,
                    "Verdict" INTEGER NOT NULL
                );
                """);
            migrationBuilder.Sql($"""INSERT INTO "ef_temp_Events" ({Columns}) SELECT {Columns} FROM "Events";""");
            migrationBuilder.Sql("""DROP TABLE "Events";""");
            migrationBuilder.Sql("""ALTER TABLE "ef_temp_Events" RENAME TO "Events";""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_TeamId_Id" ON "Events" ("TeamId", "Id");""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_TrackedMessageId_Id" ON "Events" ("TrackedMessageId", "Id");""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_UserId_Id" ON "Events" ("UserId", "Id");""");
        }
    }
}
