using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <summary>
    /// Events may name no message: a document read through a share link that was never part of a registered message
    /// (TrackedMessageId null), so that those reads reach the live feed like any other. SQLite cannot drop a NOT NULL
    /// constraint, so the events table is rebuilt, in one transaction as in EventIdsWithoutAutoincrement (EF's own
    /// rebuild commits the copy, the swap and the indexes apart): the same ids (plain rowids), the same indexes, and a new
    /// one over a document's events only (a document page's followed links read it), which pixel hits and clicks (no
    /// document) do not write to.
    /// Down drops the share-link reads: a column that may not be null has nothing to hold them with.
    /// </summary>
    public partial class ShareLinkEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder) => Rebuild(migrationBuilder, messageRequired: false);

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder) => Rebuild(migrationBuilder, messageRequired: true);

        static void Rebuild(MigrationBuilder migrationBuilder, bool messageRequired)
        {
            const string Columns = "\"Id\", \"ContentId\", \"CopyId\", \"FromAddress\", \"Ip\", \"Kind\", \"LinkId\", \"Method\", \"OccurredAt\", \"Page\", \"Reason\", \"RecipientId\", \"TeamId\", \"TrackedMessageId\", \"Url\", \"UserAgent\", \"UserId\", \"Verdict\"";
            migrationBuilder.Sql($"""
                CREATE TABLE "ef_temp_Events" (
                    "Id" INTEGER NOT NULL CONSTRAINT "PK_Events" PRIMARY KEY,
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
                    "TrackedMessageId" BLOB {(messageRequired ? "NOT NULL" : "NULL")},
                    "Url" TEXT NULL,
                    "UserAgent" TEXT NULL,
                    "UserId" BLOB NOT NULL,
                    "Verdict" INTEGER NOT NULL
                );
                """);
            migrationBuilder.Sql($"""INSERT INTO "ef_temp_Events" ({Columns}) SELECT {Columns} FROM "Events"{(messageRequired ? " WHERE \"TrackedMessageId\" IS NOT NULL" : "")};""");
            migrationBuilder.Sql("""DROP TABLE "Events";""");
            migrationBuilder.Sql("""ALTER TABLE "ef_temp_Events" RENAME TO "Events";""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_TeamId_Id" ON "Events" ("TeamId", "Id");""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_TrackedMessageId_Id" ON "Events" ("TrackedMessageId", "Id");""");
            migrationBuilder.Sql("""CREATE INDEX "IX_Events_UserId_Id" ON "Events" ("UserId", "Id");""");
            if (!messageRequired)
            {
                migrationBuilder.Sql("""CREATE INDEX "IX_Events_DocumentReads" ON "Events" ("ContentId", "Id") WHERE "ContentId" IS NOT NULL;""");
            }
        }
    }
}
