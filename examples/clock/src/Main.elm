port module Main exposing (main)

{-| A backend on the wall clock, served in HTTP mode (`http=true`): every
request is an event `{"id", "method", "path", ...}` on `onEvent`, answered by
`{"id", "status", "headers", "body"}` on `respond`, in that event or a later
one. Flags `{"tick": MS, "sleep": MS}` (both optional).

    GET /now      -> {"now": Time.now}
    GET /sleep    -> {"slept": SLEEP, "now": Time.now}, answered after
                     `Process.sleep SLEEP` (300 ms unless the flags say)
    GET /remind   -> 202 at once; SLEEP ms later the app notes a reminder
    GET /reminded -> {"reminded": n, "at": when the last one was noted}
    GET /ticks    -> {"ticks": n, "last": the last tick's time}, with
                     `Time.every TICK` (no ticks unless the flags say)

-}

import Json.Decode as Decode
import Json.Encode as Encode
import Process
import Task
import Time


port onEvent : (Decode.Value -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type alias Model =
    { tick : Int
    , sleep : Int
    , ticks : Int
    , lastTick : Int
    , reminded : Int
    , remindedAt : Int
    }


type Msg
    = Request Decode.Value
    | Now String Time.Posix
    | Slept String Time.Posix
    | Reminded Time.Posix
    | Tick Time.Posix


main : Program Decode.Value Model Msg
main =
    Platform.worker
        { init = init
        , update = update
        , subscriptions = subscriptions
        }


init : Decode.Value -> ( Model, Cmd Msg )
init flags =
    let
        field name fallback =
            Decode.decodeValue (Decode.field name Decode.int) flags
                |> Result.withDefault fallback
    in
    ( { tick = field "tick" 0
      , sleep = field "sleep" 300
      , ticks = 0
      , lastTick = 0
      , reminded = 0
      , remindedAt = 0
      }
    , Cmd.none
    )


subscriptions : Model -> Sub Msg
subscriptions model =
    if model.tick > 0 then
        Sub.batch [ onEvent Request, Time.every (toFloat model.tick) Tick ]

    else
        onEvent Request


update : Msg -> Model -> ( Model, Cmd Msg )
update msg model =
    case msg of
        Request value ->
            let
                id =
                    Decode.decodeValue (Decode.field "id" Decode.string) value
                        |> Result.withDefault ""

                path =
                    Decode.decodeValue (Decode.field "path" Decode.string) value
                        |> Result.withDefault ""
            in
            case path of
                "/now" ->
                    ( model, Task.perform (Now id) Time.now )

                "/sleep" ->
                    ( model
                    , Task.perform (Slept id)
                        (Process.sleep (toFloat model.sleep) |> Task.andThen (\_ -> Time.now))
                    )

                "/remind" ->
                    ( model
                    , Cmd.batch
                        [ answer id 202 [ ( "due_in", Encode.int model.sleep ) ]
                        , Task.perform Reminded
                            (Process.sleep (toFloat model.sleep) |> Task.andThen (\_ -> Time.now))
                        ]
                    )

                "/reminded" ->
                    ( model
                    , answer id
                        200
                        [ ( "reminded", Encode.int model.reminded )
                        , ( "at", Encode.int model.remindedAt )
                        ]
                    )

                "/ticks" ->
                    ( model
                    , answer id
                        200
                        [ ( "ticks", Encode.int model.ticks )
                        , ( "last", Encode.int model.lastTick )
                        ]
                    )

                _ ->
                    ( model, answer id 404 [ ( "error", Encode.string ("no " ++ path) ) ] )

        Now id time ->
            ( model, answer id 200 [ ( "now", Encode.int (Time.posixToMillis time) ) ] )

        Slept id time ->
            ( model
            , answer id
                200
                [ ( "slept", Encode.int model.sleep )
                , ( "now", Encode.int (Time.posixToMillis time) )
                ]
            )

        Reminded time ->
            ( { model | reminded = model.reminded + 1, remindedAt = Time.posixToMillis time }
            , Cmd.none
            )

        Tick time ->
            ( { model | ticks = model.ticks + 1, lastTick = Time.posixToMillis time }
            , Cmd.none
            )


answer : String -> Int -> List ( String, Encode.Value ) -> Cmd msg
answer id status fields =
    respond
        (Encode.object
            [ ( "id", Encode.string id )
            , ( "status", Encode.int status )
            , ( "headers", Encode.object [ ( "content-type", Encode.string "application/json" ) ] )
            , ( "body", Encode.string (Encode.encode 0 (Encode.object fields)) )
            ]
        )
