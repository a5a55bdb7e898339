namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// The connection to a mail server a user named, under its TLS: at most <see cref="Limit"/> bytes are read after each
/// thing the client writes (a command, a line of a message being sent), and more ends the connection with an
/// <see cref="IOException"/>. MailKit keeps what a server answers in memory, whatever it announces: a server that
/// sends a literal of gigabytes after saying the message is small, or a response line that never ends, would otherwise
/// fill this server's memory — and one user can point their mailbox at any server. The limit is far above any real
/// answer to one command (the largest is a message, which the watch reads only up to <c>Mailboxes:MaxMessageBytes</c>).
/// </summary>
public sealed class ReplyLimitStream(Stream inner, long limit) : Stream
{
    long left = limit;

    public long Limit { get; } = limit;

    int Allow(int count)
    {
        if (left <= 0) throw new ReplyTooLargeException(Limit);
        return (int)Math.Min(count, left);
    }

    int Took(int read)
    {
        left -= read;
        return read;
    }

    public override int Read(byte[] buffer, int offset, int count) => Took(inner.Read(buffer, offset, Allow(count)));

    public override int Read(Span<byte> buffer) => Took(inner.Read(buffer[..Allow(buffer.Length)]));

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Took(await inner.ReadAsync(buffer.AsMemory(offset, Allow(count)), cancellationToken));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Took(await inner.ReadAsync(buffer[..Allow(buffer.Length)], cancellationToken));

    public override void Write(byte[] buffer, int offset, int count)
    {
        left = Limit;
        inner.Write(buffer, offset, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        left = Limit;
        inner.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        left = Limit;
        return inner.WriteAsync(buffer, offset, count, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        left = Limit;
        return inner.WriteAsync(buffer, cancellationToken);
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override bool CanTimeout => inner.CanTimeout;

    public override int ReadTimeout
    {
        get => inner.ReadTimeout;
        set => inner.ReadTimeout = value;
    }

    public override int WriteTimeout
    {
        get => inner.WriteTimeout;
        set => inner.WriteTimeout = value;
    }

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>
/// A server sent more than <see cref="ReplyLimitStream.Limit"/> bytes in answer to one command; the connection is
/// closed. Its own type so that the IMAP watch can tell it from a lost connection: the message it was reading is one
/// the server will send as large again, and is noted as unreadable instead of being asked for at every round.
/// </summary>
public sealed class ReplyTooLargeException(long limit)
    : IOException($"The server sent more than {limit:N0} bytes in answer to one command; the connection was closed.")
{
    public long Limit { get; } = limit;
}
