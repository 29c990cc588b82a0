import CCurl
import Foundation

/// libcurl's process-wide initialisation, run once before the first handle (it is not thread-safe itself).
private let curlGlobalReady: Bool = curl_global_init(3 /* CURL_GLOBAL_ALL */) == CURLE_OK

/// How one transfer ended, before any retry decision.
enum TransferOutcome: Equatable {
    case success(status: Int)
    case httpError(status: Int)
    case failure(code: Int, message: String)
}

/// Receives the body of a transfer: appends to a file descriptor and reports byte counts.
final class TransferSink {
    let fd: Int32
    var written: Int64 = 0
    var writeFailed = false
    let onProgress: ((Int64) -> Void)?

    init(fd: Int32, onProgress: ((Int64) -> Void)?) {
        self.fd = fd
        self.onProgress = onProgress
    }

    func write(_ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        var done = 0
        while done < count {
            let result = Foundation.write(fd, pointer + done, count - done)
            if result < 0 {
                if errno == EINTR { continue }
                writeFailed = true
                return done
            }
            done += result
        }
        written += Int64(count)
        onProgress?(written)
        return count
    }
}

/// The one owner of a libcurl easy handle. Not shared between threads; each download worker has its own, and
/// reuses it so connections to the same host are kept alive.
final class CurlHandle {
    private let raw: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws {
        guard curlGlobalReady, let handle = curl_easy_init() else {
            throw PackageError.tool(name: "libcurl", message: "cannot create a transfer handle")
        }
        raw = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// GETs `url` into `sink`, asking for the bytes from `resumeFrom` on when it is non-zero.
    func get(_ url: String, into sink: TransferSink, resumeFrom: Int64, options: DownloadOptions) -> TransferOutcome {
        curl_easy_reset(raw)
        errorBuffer[0] = 0
        let context = Unmanaged.passUnretained(sink).toOpaque()
        kiln_curl_set_str(raw, CURLOPT_URL, url)
        kiln_curl_set_ptr(raw, CURLOPT_ERRORBUFFER, errorBuffer)
        kiln_curl_set_long(raw, CURLOPT_NOSIGNAL, 1)
        kiln_curl_set_long(raw, CURLOPT_FOLLOWLOCATION, 1)
        kiln_curl_set_long(raw, CURLOPT_MAXREDIRS, 5)
        kiln_curl_set_long(raw, CURLOPT_FAILONERROR, 1)
        kiln_curl_set_str(raw, CURLOPT_USERAGENT, "kiln")
        kiln_curl_set_long(raw, CURLOPT_CONNECTTIMEOUT, options.connectTimeout)
        kiln_curl_set_long(raw, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimit)
        kiln_curl_set_long(raw, CURLOPT_LOW_SPEED_TIME, options.lowSpeedTime)
        kiln_curl_set_off(raw, CURLOPT_RESUME_FROM_LARGE, curl_off_t(resumeFrom))
        kiln_curl_set_ptr(raw, CURLOPT_WRITEDATA, context)
        kiln_curl_set_write(raw) { data, size, count, context in
            guard let data, let context else { return 0 }
            let sink = Unmanaged<TransferSink>.fromOpaque(context).takeUnretainedValue()
            return sink.write(UnsafeRawPointer(data), size * count)
        }
        let code = curl_easy_perform(raw)
        var status = 0
        kiln_curl_get_long(raw, CURLINFO_RESPONSE_CODE, &status)
        if code == CURLE_OK { return .success(status: status) }
        if code == CURLE_HTTP_RETURNED_ERROR { return .httpError(status: status) }
        var message = String(cString: errorBuffer)
        if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
        if sink.writeFailed { message += " (writing to disk failed: \(String(cString: strerror(errno))))" }
        return .failure(code: Int(code.rawValue), message: message)
    }
}
